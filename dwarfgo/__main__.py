import sys

from . import fewer_collections

fewer_collections()  # (here before the command line's modules are imported: ~6 ms fewer; cli.run again)

try:
    from .cli import run
except KeyboardInterrupt:  # Ctrl-C while starting: no traceback
    sys.exit(130)

run()
