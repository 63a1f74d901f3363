import sys

from metrofed.cli import main

sys.exit(main())
