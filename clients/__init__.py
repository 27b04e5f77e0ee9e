"""Clients of the vault's HTTP contracts: the service SDK and the auditor."""
