import sys

from profiling.cli.main import main

sys.exit(main())
