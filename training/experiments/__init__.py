"""Validation checks and one-off measurements behind the choices of past versions (training/README.md).
None of them is part of `npm run train`; each runs as `/usr/bin/python3 -m training.experiments.<name>`."""
