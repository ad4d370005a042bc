"""The recurrence's mistakes that the rnn assignment (one sequence, column vectors) and
the seq assignment (batches of row vectors) share: backpropagation through time goes
wrong the same way in both. Catalogue entries only; each assignment's mistakes module
holds its models.
"""

from __future__ import annotations

from grader.diagnoses import register

NO_RECURRENCE = register(
    "bptt.no_recurrence",
    "The gradient does not flow back through W from later time steps.",
    "h(t) influences the loss twice: through o(t) and through a(t+1). So "
    "dL/dh(t) = V^T dL/do(t) + W^T dL/da(t+1), computed from t = T down to 1.").code
TANH = register(
    "bptt.tanh_derivative_wrong",
    "The tanh derivative is taken on the pre-activation a(t) instead of as 1 - h(t)^2.",
    "d tanh(a)/da = 1 - tanh(a)^2 = 1 - h(t)^2: use the hidden state, as in the lecture's "
    "diag(1 - (h(t))^2).").code
NOT_SUMMED = register(
    "bptt.not_summed_over_time",
    "The parameter gradients come from one time step only.",
    "The parameters are shared by all time steps, so their gradients are sums over t "
    "(dW += ..., not dW = ...).").code
