"""Every check of the rnn assignment, registered in report order (the order of the
imports below; see README.md for the points). Each check is a small plain function;
see grader/checks.py."""

# isort: off
import assignments.rnn.checks_forward  # noqa: F401 - importing a module registers its checks
import assignments.rnn.checks_backward  # noqa: F401
import assignments.rnn.checks_sample  # noqa: F401
import assignments.rnn.checks_birnn  # noqa: F401
# isort: on
from assignments.rnn.registry import registry

__all__ = ["registry"]
