"""Every check of the cnn assignment, registered in report order (the order of the
imports below; see README.md for the points). Each check is a small plain function;
see grader/checks.py."""

# isort: off
import assignments.cnn.checks_conv  # noqa: F401 - importing a module registers its checks
import assignments.cnn.checks_pool  # noqa: F401
import assignments.cnn.checks_dense  # noqa: F401
import assignments.cnn.checks_softmax  # noqa: F401
import assignments.cnn.checks_network  # noqa: F401
# isort: on
from assignments.cnn.registry import registry

__all__ = ["registry"]
