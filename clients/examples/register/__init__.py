"""An electoral register that holds addresses at source (ARCHITECTURE §8, held at source).

The register never copies what it holds into the vault. The operator registers it with
`vault service add ... --issues address.home --source-url <public_url>/source`; when a
service reads `address.home` (or a derived answer over it, such as `resident_in:`) under
a citizen's grant, the vault asks it, and it answers a record signed with its own key.

    python -m clients.examples.register --vault http://localhost:8000 --port 8003 \\
        --data-dir vault-data

Built only on the service SDK (`clients.service`) and public libraries.
"""

from clients.examples.register.app import SOURCE_PATH, Register, RegisterConfig, create_app

__all__ = ["SOURCE_PATH", "Register", "RegisterConfig", "create_app"]
