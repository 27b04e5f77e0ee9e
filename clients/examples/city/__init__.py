"""The city's seed scenarios (issue 12 §6) as example services, written against the
service SDK only, each on its own port (its own origin, as a real service):

* Council tax: the Benefits Agency (`agency`, port P) writes an Attendance Allowance
  award into the citizen's vault; the council tax team (`counciltax`, P+2), holding a
  periodic grant on the award, is told when it changes, reads it, checks the agency's
  signature and shows "Reduction applied" (and "Reduction removed" once it is withdrawn).
* A register held at source: the electoral register (`register`, P+1) keeps the
  citizen's address itself; the vault asks it whenever a service reads `address.home` or
  `resident_in:` (the council tax team asks whether they live in Riverside), and never
  keeps a copy.
* Wearable to GP: a heart monitor (`wearable`, P+3) appends batches of readings; the GP
  practice (`gp`, P+4) holds a grant on `observations_of_concern` only, and shows
  "Concern: heart rate" when a reading is out of its usual range, never a value.
* Free school meals (issue 14 §5): a parent, acting for their child, links the agency to
  the child's vault (it writes the household's Universal Credit award there) and gives
  the school (`school`, P+5) a grant on the child's `eligible_free_school_meals`; the
  school shows "Eligible for free school meals" at once, and "Not eligible" when the
  vault tells it the award ended.

    python -m clients.examples.city --vault http://localhost:8000 --port 8002 \\
        --data-dir vault-data

`make run` registers them (clients/examples/demo.py) and starts them beside Blue Badge.
"""

from collections.abc import Callable

from fastapi import FastAPI

from clients.examples.city import agency, counciltax, electoral, gp, school, wearable
from clients.examples.city.config import SPECS, CityConfig, CityError, NotRegistered, Spec

__all__ = ["APPS", "SPECS", "CityConfig", "CityError", "NotRegistered", "Spec"]

#: Each service's app factory, by slug.
APPS: dict[str, Callable[..., FastAPI]] = {
    "agency": agency.create_app,
    "register": electoral.create_app,
    "counciltax": counciltax.create_app,
    "wearable": wearable.create_app,
    "gp": gp.create_app,
    "school": school.create_app,
}

