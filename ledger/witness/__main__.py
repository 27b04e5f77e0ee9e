"""`python -m ledger.witness` is `vault-witness` (the demo launcher starts it this way)."""

from ledger.witness.cli import main

main()
