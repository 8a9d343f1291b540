"""Make emulator.py and kernel_reference.py (this folder) importable, as tests/strategies.py is elsewhere."""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
