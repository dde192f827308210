"""``python -m bienbao.cli`` = ``bienbao``."""

import sys

from ._main import main

sys.exit(main())
