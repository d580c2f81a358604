import sys

from tinysmile.cli import main

sys.exit(main())
