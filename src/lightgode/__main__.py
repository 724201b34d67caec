import sys

from lightgode.cli import main

sys.exit(main())
