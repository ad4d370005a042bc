"""Assignment `cnn`: convolution, max pooling, ReLU, fully connected layers, softmax
with cross-entropy (the student contract, `cnn_layers.py`)."""

from assignments.cnn.checks import registry
from grader.assignment import Assignment

FUNCTIONS = (
    "conv_output_size",
    "conv2d_forward",
    "conv2d_backward",
    "maxpool_forward",
    "maxpool_backward",
    "relu_forward",
    "relu_backward",
    "linear_forward",
    "linear_backward",
    "softmax_cross_entropy",
)

ASSIGNMENT = Assignment(
    name="cnn",
    title="Convolutional layers in NumPy",
    file_name="cnn_layers.py",
    functions=FUNCTIONS,
    registry=registry,
    reference_module="reference.cnn",
)
