"""`python PATH/TO/THIS/PACK download|speak ...`: the pack's command line from any working directory.

The same as `python -m indextts2_core ...` run inside this folder, but it does not depend on the
working directory being on sys.path (embedded Pythons, such as ComfyUI's portable build, leave it off).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from indextts2_core.__main__ import main  # noqa: E402  (needs the path above)

sys.exit(main())
