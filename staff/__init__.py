"""Course-staff tools (not part of the generated projects): `python -m staff --help`."""
