"""Assignment `rnn`: the lecture's vanilla RNN, backpropagation through time,
sampling and the bidirectional forward pass (the student contract, `rnn_layers.py`)."""

from assignments.rnn.checks import registry
from grader.assignment import Assignment

FUNCTIONS = ("rnn_forward", "rnn_loss", "rnn_backward", "rnn_sample", "birnn_forward")

ASSIGNMENT = Assignment(
    name="rnn",
    title="Recurrent networks in NumPy",
    file_name="rnn_layers.py",
    functions=FUNCTIONS,
    registry=registry,
    reference_module="reference.rnn",
)
