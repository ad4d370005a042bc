"""Builds the student notebook of the `cnn` assignment, cnn.ipynb.

The code cells that students fill in are cut out of cnn_layers.py, the .py
template next to this file, so the notebook and the template always offer the
same stubs; only the explanations between them live here. Run this file to
write cnn.ipynb again after changing either:

    python assignments/cnn/template/notebook.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell

from grader.notebooks import finish, template_parts

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "cnn_layers.py"
NOTEBOOK = HERE / "cnn.ipynb"


INTRO = r"""# Convolutional layers in NumPy

In this assignment you build the layers of a small convolutional network yourself,
with nothing but NumPy. The lecture's typical CNN repeats *convolution – ReLU – max
pooling* a few times and ends with one or more fully connected layers; a softmax with
the cross-entropy loss on top turns the last layer's scores into the number that
training minimises. For every layer you write the forward pass and, where the layer
has one, the backward pass that hands backpropagation its gradients.

**Layout.** Every array follows the lecture's layout, which is also what the grader
passes to your functions:

- A batch comes first and channels come last: $N$ images of $H \times W$ pixels with
  $C$ channels form an array of shape `(N, H, W, C)`.
- The filters of a convolutional layer form an array of shape `(f_h, f_w, C_in, C_out)`.
  For example `(5, 5, 3, 10)` holds ten $5 \times 5$ filters over 3 input channels
  and gives 10 output channels. Each output channel has one bias, so `b` has shape
  `(10,)` there.
- The lecture counts from 1 and NumPy from 0: the lecture's $x(i, j, c)$ of image $n$
  is `x[n, i-1, j-1, c-1]` here.

**Rules.**

- Fill in each function where it says `raise NotImplementedError(...)`, and keep its
  name and arguments: the grader calls your functions by name.
- Import nothing but NumPy.
- Never write into an input array (the upstream gradient `dy` included); put your
  results in new arrays.
- Loops are fine: a correct loop version gets full marks.

Each function's docstring gives the shape of every array it takes and returns. The
last cell of the notebook checks your work, saved or not: run it whenever you like."""

EXERCISE_1 = r"""## Exercise 1: the lecture's two-channel example, by hand

One image of $4 \times 4$ pixels with two channels goes through a layer with a single
$2 \times 2$ filter (the same weights on both channels), bias 0, stride 1 and no
padding:

$$
x(:,:,1) = \begin{pmatrix} 1 & -2 & 0 & 5 \\ 7 & 0 & 1 & -3 \\ 2 & -2 & 2 & -2 \\ -5 & -4 & 3 & 1 \end{pmatrix},
\qquad
x(:,:,2) = \begin{pmatrix} 0 & -1 & 2 & 0 \\ -4 & 9 & 6 & 5 \\ 3 & 2 & 1 & 0 \\ 0 & 1 & 3 & -3 \end{pmatrix},
\qquad
w(:,:,1) = w(:,:,2) = \begin{pmatrix} 1 & -2 \\ 3 & 1 \end{pmatrix}.
$$

The filter has as many channels as the input, so each position of the filter gives a
single number: lay the filter on a $2 \times 2$ patch, multiply patch and filter
elementwise in each channel, and add up all eight products.

Work out the first two outputs by hand and write them below:

- $y(1,1,1)$, the filter on the top-left patch: ...
- $y(1,2,1)$, the filter moved one pixel to the right: ...

How many rows and columns does the output $y(:,:,1)$ have? Exercise 2 turns the
answer into a rule. Once you have written `conv2d_forward` in exercise 3, the cell
after it computes the whole output, so you can compare it with your numbers."""

EXERCISE_2 = r"""## Exercise 2: the output size

The lecture's rules for one axis, with an input of size $n$ and a filter of size $f$:

- Without padding or stride, the filter fits in $n - f + 1$ positions: a $7 \times 7$
  image and a $3 \times 3$ filter give a $5 \times 5$ output.
- Padding with $p$ zeros on each side makes the input $n + 2p$ long; $p = (f-1)/2$
  keeps the size ($7 \times 7$ stays $7 \times 7$ for a $3 \times 3$ filter and $p = 1$).
- A stride of $k$ moves the filter $k$ pixels at a time, which gives $(n - f)/k + 1$
  positions.

Together, rounding down where the stride does not divide evenly (as common
frameworks do):

$$n_{\text{out}} = \left\lfloor \frac{n + 2p - f}{k} \right\rfloor + 1.$$

Write `conv_output_size`; it should refuse (with `ValueError`) a filter larger than the
padded input, a stride below 1 and negative padding."""

TRY_OUTPUT_SIZE = """\
import traceback

# The lecture's 7x7 image and 3x3 filter: plain, padded with (3 - 1)/2 = 1,
# and with stride 2. A correct rule prints 5 7 3.
try:
    print(conv_output_size(7, 3), conv_output_size(7, 3, pad=1), conv_output_size(7, 3, stride=2))
except NotImplementedError:
    print("conv_output_size is not written yet: write it above, run its cell, then this one.")
except Exception:  # a mistake in your code: Python's report of it, and Run All goes on
    traceback.print_exc()"""

EXERCISE_3 = r"""## Exercise 3: the convolutional layer, forward

Each filter slides over the (zero-padded) image in steps of the stride. At every
position, the patch under the filter and the filter are multiplied elementwise and
summed over the filter's rows, columns and all input channels; the filter's bias is
added to the sum. The weights stay the same while the filter moves (weight sharing),
and filter $k$ produces output channel $k$. With 0-based indices and
$\tilde{x}$ the input with $p$ zeros around $H$ and $W$:

$$
y(n, i, j, k) = b_k + \sum_{s=0}^{f_h - 1} \sum_{t=0}^{f_w - 1} \sum_{c=0}^{C_{in} - 1}
w(s, t, c, k)\, \tilde{x}(n,\; i \cdot \mathrm{stride} + s,\; j \cdot \mathrm{stride} + t,\; c).
$$

This is the lecture's sliding dot product: the filter is laid on the image as it is,
not rotated (what signal processing calls cross-correlation). Padding adds zeros
around the height and width only, never along the batch or channel axes. The output
has shape `(N, H_out, W_out, C_out)` with the sizes from exercise 2."""

CHECK_EXERCISE_1_INTRO = r"""### Exercise 1, checked

The cell below builds the two-channel example as arrays of the layer's shapes and
prints the output channel your `conv2d_forward` computes. Compare it with your
answers to exercise 1: if the two disagree, find out which one is wrong before you
go on."""

CHECK_EXERCISE_1 = """\
import traceback

# The two-channel example in the layer's shapes: x is one image (N = 1) of
# 4x4 pixels with C_in = 2 channels, w holds one 2x2 filter over both
# channels (C_out = 1), and b is its bias.
x = np.zeros((1, 4, 4, 2))
x[0, :, :, 0] = [[1, -2, 0, 5], [7, 0, 1, -3], [2, -2, 2, -2], [-5, -4, 3, 1]]
x[0, :, :, 1] = [[0, -1, 2, 0], [-4, 9, 6, 5], [3, 2, 1, 0], [0, 1, 3, -3]]
w = np.zeros((2, 2, 2, 1))
w[:, :, 0, 0] = [[1, -2], [3, 1]]  # the filter on channel 1 ...
w[:, :, 1, 0] = [[1, -2], [3, 1]]  # ... and the same weights on channel 2
b = np.zeros(1)

try:
    y = conv2d_forward(x, w, b)
    print("y(:,:,1) =")
    print(y[0, :, :, 0])
    # The slide shows the first two outputs: compare them with yours.
    print(f"y(1,1,1) = {y[0, 0, 0, 0]:g} (the slide: 25), y(1,2,1) = {y[0, 0, 1, 0]:g} (the slide: 27)")
    if not (np.isclose(y[0, 0, 0, 0], 25) and np.isclose(y[0, 0, 1, 0], 27)):
        print("These differ from the slide: find out why before you go on.")
except NotImplementedError:
    print("conv2d_forward is not written yet: write it in exercise 3, run its cell, then this one.")
except Exception:  # a mistake in your code: Python's report of it, and Run All goes on
    traceback.print_exc()
""".rstrip("\n")

EXERCISE_4 = r"""## Exercise 4: the convolutional layer, backward

Given the gradient $dy = \partial L / \partial y$ of the loss with respect to the
layer's output, compute the gradients with respect to $x$, $w$ and $b$. Because the
same weights are used at every position and for every image, their gradients add up
the contributions of all positions and all images of the batch:

$$
\frac{\partial L}{\partial b_k} = \sum_{n, i, j} dy(n, i, j, k),
\qquad
\frac{\partial L}{\partial w(s, t, c, k)} = \sum_{n, i, j} dy(n, i, j, k)\,
\tilde{x}(n,\; i \cdot \mathrm{stride} + s,\; j \cdot \mathrm{stride} + t,\; c).
$$

For $x$, each output $y(n, i, j, k)$ sends $dy(n, i, j, k)\, w(s, t, c, k)$ back to
the pixel it read through weight $w(s, t, c, k)$. A pixel covered by several filter
positions collects the contributions of all of them; the padding zeros are not
inputs, so their gradients are dropped at the end."""

EXERCISE_5 = r"""## Exercise 5: max pooling, forward

Max pooling shrinks the feature maps and keeps, for each window, only the strongest
activation, which tells whether the feature is present there. The lecture's
$2 \times 2$ max pooling (0-based indices) is

$$y_{ijc} = \max\{x_{2i,\,2j,\,c},\; x_{2i,\,2j+1,\,c},\; x_{2i+1,\,2j,\,c},\; x_{2i+1,\,2j+1,\,c}\},$$

computed for each channel on its own. Your function takes the window's size and
stride as arguments (the defaults give the lecture's case), uses no padding, and
leaves out windows that would stick out of the image, so the output has
$\lfloor (H - \mathrm{size}) / \mathrm{stride} \rfloor + 1$ rows and likewise for the
columns. With a stride smaller than the size, neighbouring windows overlap."""

EXERCISE_6 = r"""## Exercise 6: max pooling, backward

Only the largest element of a window decides that window's output, so the window's
gradient $dy(n, i, j, c)$ goes to that element and nowhere else in the window.

- If a window holds several equal maxima, any split of its gradient among them that
  adds up to $dy(n, i, j, c)$ is correct; giving all of it to one of them is the
  simplest choice. Giving the full gradient to every tied maximum is wrong, since the
  window's total then grows.
- With overlapping windows, one element can be the maximum of several windows: its
  gradients from all of them add up."""

EXERCISE_7 = r"""## Exercise 7: ReLU

The rectified linear unit works elementwise, $\mathrm{relu}(x) = \max(x, 0)$, on an
array of any shape. In the backward pass the gradient flows through where the input
was positive and stops where it was negative; at exactly $x = 0$ either choice is
accepted."""

EXERCISE_8 = r"""## Exercise 8: the fully connected layer

At the end of the network every output depends on every input: for each example $n$
(one row of `x`),

$$y_{n,j} = b_j + \sum_{i} x_{n,i}\, w_{i,j},$$

with `x` of shape `(N, D_in)`, `w` of shape `(D_in, D_out)` and `b` of shape
`(D_out,)`. A feature map of shape `(N, H, W, C)` becomes such rows once reshaped to
`(N, H*W*C)`. In the backward pass each gradient has the shape of the array it
belongs to; `dw` and `db` add up the contributions of all examples of the batch."""

EXERCISE_9 = r"""## Exercise 9: softmax and the cross-entropy loss

For example $n$ with scores $z_n$ (one per class) and correct class $\ell_n$, softmax
turns the scores into probabilities and the loss is minus the log of the correct
class's probability:

$$
p_{n,k} = \frac{e^{z_{n,k}}}{\sum_j e^{z_{n,j}}},
\qquad
L = \frac{1}{N} \sum_{n=1}^{N} -\log p_{n,\ell_n}.
$$

The loss is the mean over the batch. Its gradient with respect to the scores is the
one the lecture derives for the RNN's output, $\hat{y}_i - \delta(i, y)$, here
$p_{n,k} - \delta(k, \ell_n)$ for each example, divided by $N$ because of the mean.

`np.exp` overflows for scores of a few hundred. Subtracting each row's largest score
from the row first leaves the probabilities unchanged and keeps the numbers finite."""

SELF_CHECK_INTRO = r"""## Check your work

`check()` runs the public checks on your functions as they are in the notebook now,
saved or not (run a cell after changing it), and shows a summary per function, with
what most likely went wrong and a hint. Once this cell has run, `check()` works in any
cell, and `check("conv2d_forward")` checks one function. The summary links to a page
with every check in full. From a terminal, `grade cnn.ipynb` checks the saved notebook."""

SELF_CHECK = 'from grader.selfcheck import check\n\ncheck()'


def build() -> nbformat.NotebookNode:
    """The student notebook: explanations, the template's stubs and the checks."""
    setup, stubs = template_parts(TEMPLATE)

    def stub(name: str):
        # pop, so that a template function the notebook forgot is caught below
        return new_code_cell(stubs.pop(name))

    cells = [
        new_markdown_cell(INTRO),
        new_code_cell(setup),
        new_markdown_cell(EXERCISE_1),
        new_markdown_cell(EXERCISE_2),
        stub("conv_output_size"),
        new_code_cell(TRY_OUTPUT_SIZE),
        new_markdown_cell(EXERCISE_3),
        stub("conv2d_forward"),
        new_markdown_cell(CHECK_EXERCISE_1_INTRO),
        new_code_cell(CHECK_EXERCISE_1),
        new_markdown_cell(EXERCISE_4),
        stub("conv2d_backward"),
        new_markdown_cell(EXERCISE_5),
        stub("maxpool_forward"),
        new_markdown_cell(EXERCISE_6),
        stub("maxpool_backward"),
        new_markdown_cell(EXERCISE_7),
        stub("relu_forward"),
        stub("relu_backward"),
        new_markdown_cell(EXERCISE_8),
        stub("linear_forward"),
        stub("linear_backward"),
        new_markdown_cell(EXERCISE_9),
        stub("softmax_cross_entropy"),
        new_markdown_cell(SELF_CHECK_INTRO),
        new_code_cell(SELF_CHECK),
    ]
    return finish(cells, "cnn", stubs, TEMPLATE)


if __name__ == "__main__":
    nbformat.write(build(), NOTEBOOK)
    print(f"wrote {NOTEBOOK}")
