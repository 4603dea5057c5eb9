import sys

from stemforge.launch.cli import main

sys.exit(main())
