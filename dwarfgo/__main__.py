import sys

try:
    from .cli import run
except KeyboardInterrupt:  # Ctrl-C while starting: no traceback
    sys.exit(130)

run()
