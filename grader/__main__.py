"""`python -m grader`: the `grade` command, with the working directory off `sys.path`
before anything else is imported (see grader.safepath)."""

import sys

from grader.safepath import drop_from_path

drop_from_path()

from grader.cli import main  # noqa: E402 - only once the path is safe

sys.exit(main())
