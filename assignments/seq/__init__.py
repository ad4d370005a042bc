"""Assignment `seq`: the layers of CS231n's assignment 3 on batches of sequences, in
the slides' notation (reference/sequence.py): the vanilla RNN's step and recurrence,
word embedding, the LSTM's step and recurrence (the student contract, `seq_layers.py`).
Courses map their own names and layouts onto it (assignments/cs231n_rnn/contract.toml)."""

from assignments.seq.checks import registry
from assignments.seq.mistakes import CODES  # noqa: F401 - importing registers every code with the catalogue
from grader.assignment import Assignment

FUNCTIONS = (
    "rnn_step_forward",
    "rnn_step_backward",
    "rnn_forward",
    "rnn_backward",
    "word_embedding_forward",
    "word_embedding_backward",
    "lstm_step_forward",
    "lstm_step_backward",
    "lstm_forward",
    "lstm_backward",
)

ASSIGNMENT = Assignment(
    name="seq",
    title="Sequence layers on batches (RNN, LSTM, word embedding)",
    file_name="seq_layers.py",
    functions=FUNCTIONS,
    registry=registry,
    reference_module="reference.sequence",
)
