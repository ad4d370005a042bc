"""Every check of the seq assignment, registered in report order (the order of the
imports below; see README.md for the points). Each check is a small plain function;
see grader/checks.py."""

# isort: off
import assignments.seq.checks_rnn  # noqa: F401 - importing a module registers its checks
import assignments.seq.checks_embedding  # noqa: F401
import assignments.seq.checks_lstm  # noqa: F401
import assignments.seq.checks_network  # noqa: F401
# isort: on
from assignments.seq.registry import registry

__all__ = ["registry"]
