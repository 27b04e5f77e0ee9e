"""Use cases: each one transaction holding a state change and its ledger entry."""
