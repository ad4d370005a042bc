"""Builds the student notebook of the `rnn` assignment, rnn.ipynb.

The code cells that students fill in are cut out of rnn_layers.py, the .py
template next to this file, so the notebook and the template always offer the
same stubs; only the explanations between them live here. Run this file to
write rnn.ipynb again after changing either:

    python assignments/rnn/template/notebook.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell

from grader.notebooks import finish, template_parts

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "rnn_layers.py"
NOTEBOOK = HERE / "rnn.ipynb"


INTRO = r"""# Recurrent networks in NumPy

Language, DNA and other sequences have a natural order in time. In this assignment you
build the lecture's recurrent network (RNN) with nothing but NumPy: its forward pass
over a sequence, its loss, the gradients by backpropagation through time, text
generation by sampling, and a bidirectional RNN.

**The network.** For $t = 1, \dots, T$, starting from the hidden state $h^{(0)}$:

$$
\begin{aligned}
a^{(t)} &= b + W h^{(t-1)} + U x^{(t)} \\
h^{(t)} &= \tanh\big(a^{(t)}\big) \\
o^{(t)} &= c + V h^{(t)} \\
\hat{y}^{(t)} &= \operatorname{softmax}\big(o^{(t)}\big)
\end{aligned}
\qquad\qquad
L = \sum_{t=1}^{T} -\log \hat{y}^{(t)}_{y^{(t)}}
$$

$U$ maps the input to the hidden state, $W$ the previous hidden state to the next, and
$V$ the hidden state to the output; $b$ and $c$ are the biases. The same parameters
serve every time step (parameter sharing), which is what lets one network handle
sequences of any length. The loss $L$ is a **sum** over time, not a mean.

**Layout.** One sequence at a time, time first. Vectors are columns multiplied from
the left as on the slides, so $W h^{(t-1)}$ is `W @ h_prev`. NumPy counts from 0, so
row $t-1$ of a sequence array holds time $t$: `x[0]` is $x^{(1)}$ and `h[T-1]` is
$h^{(T)}$. The state before the first input, $h^{(0)}$, is the argument `h0`.

| array | shape | what it is |
|---|---|---|
| `x` | `(T, D)` | the inputs $x^{(1)}, \dots, x^{(T)}$ |
| `y` | `(T,)` | the correct symbols $y^{(1)}, \dots, y^{(T)}$, ints in $[0, K)$ |
| `h0` | `(H,)` | the initial hidden state $h^{(0)}$ |
| `U` | `(H, D)` | input-to-hidden weights |
| `W` | `(H, H)` | hidden-to-hidden weights |
| `V` | `(K, H)` | hidden-to-output weights |
| `b` | `(H,)` | hidden bias |
| `c` | `(K,)` | output bias |

**Rules.**

- Fill in each function where it says `raise NotImplementedError(...)`, and keep its
  name and arguments: the grader calls your functions by name.
- Import nothing but NumPy.
- Never write into an input array; put your results in new arrays.
- Loops are fine (the recurrence needs one over time anyway).

Each function's docstring gives the shape of every array it takes and returns. The
last cell of the notebook checks your work, saved or not: run it whenever you like."""

EXERCISE_1 = r"""## Exercise 1: the forward pass

Run the network over one sequence: start from $h^{(0)}$ = `h0` and compute $h^{(t)}$ and
$\hat{y}^{(t)}$ for $t = 1, \dots, T$ with the equations above. Each $h^{(t)}$ needs
$h^{(t-1)}$, so the steps come one after the other. Return all hidden states (without
$h^{(0)}$) and all output distributions, one row per time step."""

TRY_FORWARD = """\
import traceback

# A small random network to try your functions on: T = 5 steps, D = K = 3
# symbols (inputs and outputs over the same symbols, as in exercise 4) and
# H = 4 hidden units. The seed makes every run give the same numbers.
rng = np.random.default_rng(0)
T, D, H, K = 5, 3, 4, 3
x = np.eye(D)[rng.integers(0, D, size=T)]  # one-hot inputs, one row per step
y = rng.integers(0, K, size=T)
h0 = np.zeros(H)
U = 0.5 * rng.normal(size=(H, D))
W = 0.5 * rng.normal(size=(H, H))
V = 0.5 * rng.normal(size=(K, H))
b = 0.1 * rng.normal(size=H)
c = 0.1 * rng.normal(size=K)

h = yhat = None  # until rnn_forward gives them: the next cells need them
try:
    h, yhat = rnn_forward(x, h0, U, W, V, b, c)
    print("h:", h.shape, " yhat:", yhat.shape)  # should be (5, 4) and (5, 3)
    # Every yhat(t) is a probability distribution over the K symbols.
    print("row sums of yhat:", yhat.sum(axis=1))
except NotImplementedError:
    print("rnn_forward is not written yet: write it above, run its cell, then this one.")
except Exception:  # a mistake in your code: Python's report of it, and Run All goes on
    h = yhat = None
    traceback.print_exc()"""

EXERCISE_2 = r"""## Exercise 2: the loss

At each step the loss is minus the log of the probability that the network gives
the correct symbol; the sequence's loss adds these up:

$$L = \sum_{t=1}^{T} L^{(t)} = -\sum_{t=1}^{T} \log \hat{y}^{(t)}_{y^{(t)}}.$$"""

TRY_LOSS = """\
# A network with small random weights gives every symbol roughly the same
# probability 1/K, so each step costs about log K and L should come out
# near T log K.
try:
    if yhat is None:
        print("This needs yhat from rnn_forward: write it (exercise 1), then run the cells from there.")
    else:
        print("L =", rnn_loss(yhat, y), " T log K =", T * np.log(K))
except NotImplementedError:
    print("rnn_loss is not written yet: write it above, run its cell, then this one.")
except Exception:  # a mistake in your code: Python's report of it, and Run All goes on
    traceback.print_exc()"""

EXERCISE_3 = r"""## Exercise 3: backpropagation through time

As for a feed-forward network, first find the gradients with respect to the nodes of
the unfolded graph, going backwards from $t = T$ to $t = 1$, then the gradients with
respect to the parameters. With the lecture's formulas
($\delta(i, y)$ is 1 when $i = y$ and 0 otherwise):

$$
\big(\nabla_{o^{(t)}} L\big)_i = \hat{y}^{(t)}_i - \delta\big(i, y^{(t)}\big),
\qquad
\nabla_{h^{(T)}} L = V^\top \nabla_{o^{(T)}} L,
$$

$$
\nabla_{h^{(t)}} L = W^\top \operatorname{diag}\big(1 - (h^{(t+1)})^2\big)\, \nabla_{h^{(t+1)}} L
+ V^\top \nabla_{o^{(t)}} L \qquad (t < T).
$$

$1 - (h^{(t)})^2$ is the derivative of $\tanh$ at $a^{(t)}$, written with its output
$h^{(t)}$. The parameters are shared by all time steps, so their gradients add up the
contributions of every step:

$$
\nabla_c L = \sum_t \nabla_{o^{(t)}} L,
\qquad
\nabla_V L = \sum_t \big(\nabla_{o^{(t)}} L\big)\, h^{(t)\top},
\qquad
\nabla_b L = \sum_t \operatorname{diag}\big(1 - (h^{(t)})^2\big)\, \nabla_{h^{(t)}} L,
$$

$$
\nabla_W L = \sum_t \operatorname{diag}\big(1 - (h^{(t)})^2\big) \big(\nabla_{h^{(t)}} L\big)\, h^{(t-1)\top},
\qquad
\nabla_U L = \sum_t \operatorname{diag}\big(1 - (h^{(t)})^2\big) \big(\nabla_{h^{(t)}} L\big)\, x^{(t)\top}.
$$

Note that $\nabla_W L$ pairs step $t$ with the *previous* state $h^{(t-1)}$, which for
$t = 1$ is $h^{(0)}$. Return also the gradient with respect to $h^{(0)}$, which
reaches $L$ only through $a^{(1)}$:
$\nabla_{h^{(0)}} L = W^\top \operatorname{diag}\big(1 - (h^{(1)})^2\big)\, \nabla_{h^{(1)}} L$."""

TRY_BACKWARD = """\
# A gradient check by finite differences: nudging one entry of a parameter
# by +-eps changes L by about 2*eps times dL/d(that entry). Comparing every
# entry finds mistakes that looking at the formulas does not.
def loss_with(params):
    _, yh = rnn_forward(x, params["h0"], params["U"], params["W"], params["V"], params["b"], params["c"])
    return rnn_loss(yh, y)


try:
    if yhat is None:
        print("This needs h and yhat from rnn_forward: write it (exercise 1), then run the cells from there.")
    else:
        params = {"U": U, "W": W, "V": V, "b": b, "c": c, "h0": h0}
        grads = rnn_backward(x, y, h0, h, yhat, U, W, V, b, c)
        eps = 1e-6
        for name, value in params.items():
            numeric = np.zeros_like(value)
            for idx in np.ndindex(value.shape):
                up, down = value.copy(), value.copy()
                up[idx] += eps
                down[idx] -= eps
                numeric[idx] = (loss_with({**params, name: up}) - loss_with({**params, name: down})) / (2 * eps)
            # A correct gradient differs from central differences by about 1e-9 here;
            # the usual mistakes show up as differences of 1e-2 and more.
            print(f"dL/d{name}: largest difference {np.max(np.abs(grads[name] - numeric)):.1e}")
except NotImplementedError as error:  # rnn_backward, or rnn_loss that the check uses
    print(f"{str(error).split(':')[0]} is not written yet: write it, run its cell, then this one.")
except Exception:  # a mistake in your code: Python's report of it, and Run All goes on
    traceback.print_exc()"""

EXERCISE_4 = r"""## Exercise 4: generating text

Trained on enough Shakespeare, an RNN writes new text that sounds like it, one symbol
at a time. Inputs and outputs are then the same $K$ symbols (characters, say), and
each input is a one-hot vector: $x^{(t)}$ has a 1 at the symbol's index and 0
elsewhere, so $D = K$.

Start from $h^{(0)}$ = `h0` with the symbol `x0` as the first input, and repeat `n`
times: feed the current symbol as a one-hot $x^{(t)}$, compute $h^{(t)}$ and
$\hat{y}^{(t)}$, **draw** the next symbol at random with the probabilities
$\hat{y}^{(t)}$, and feed it back as the next input. Use only the generator `rng` for
randomness (for example `rng.choice`). Taking the most likely symbol every time
instead of drawing gives dull, repetitive text, and fails the check."""

TRY_SAMPLE = """\
# Ten symbols from the small network of exercise 1 (its D equals K), starting
# from symbol 0. The same seed gives the same symbols every run.
try:
    print(rnn_sample(h0, 0, 10, U, W, V, b, c, np.random.default_rng(1)))
except NotImplementedError:
    print("rnn_sample is not written yet: write it above, run its cell, then this one.")
except Exception:  # a mistake in your code: Python's report of it, and Run All goes on
    traceback.print_exc()"""

EXERCISE_5 = r"""## Exercise 5: the bidirectional RNN

Every output of the network so far depends on the past only. A bidirectional RNN also
lets the output at time $t$ see later steps: a second recurrence $g$ runs backward in
time, and each output depends on both states:

$$
\begin{aligned}
h^{(t)} &= \tanh\big(b_f + W_f h^{(t-1)} + U_f x^{(t)}\big), & t &= 1, \dots, T, \text{ from } h^{(0)} = h_0, \\
g^{(t)} &= \tanh\big(b_b + W_b g^{(t+1)} + U_b x^{(t)}\big), & t &= T, \dots, 1, \text{ from } g^{(T+1)} = g_0, \\
o^{(t)} &= c + V \begin{bmatrix} h^{(t)} \\ g^{(t)} \end{bmatrix}, & \hat{y}^{(t)} &= \operatorname{softmax}\big(o^{(t)}\big).
\end{aligned}
$$

$V$ has shape `(K, 2H)`: its first $H$ columns act on $h^{(t)}$, the last $H$ on
$g^{(t)}$. Return `h`, `g` and `yhat` with row $t-1$ for time $t$, so the first state
the backward recurrence computes, $g^{(T)}$, is the last row of `g`."""

SELF_CHECK_INTRO = r"""## Check your work

`check()` runs the public checks on your functions as they are in the notebook now,
saved or not (run a cell after changing it), and shows a summary per function, with
what most likely went wrong and a hint. Once this cell has run, `check()` works in any
cell, and `check("rnn_backward")` checks one function. The summary links to a page
with every check in full. From a terminal, `grade rnn.ipynb` checks the saved notebook."""

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
        stub("rnn_forward"),
        new_code_cell(TRY_FORWARD),
        new_markdown_cell(EXERCISE_2),
        stub("rnn_loss"),
        new_code_cell(TRY_LOSS),
        new_markdown_cell(EXERCISE_3),
        stub("rnn_backward"),
        new_code_cell(TRY_BACKWARD),
        new_markdown_cell(EXERCISE_4),
        stub("rnn_sample"),
        new_code_cell(TRY_SAMPLE),
        new_markdown_cell(EXERCISE_5),
        stub("birnn_forward"),
        new_markdown_cell(SELF_CHECK_INTRO),
        new_code_cell(SELF_CHECK),
    ]
    return finish(cells, "rnn", stubs, TEMPLATE)


if __name__ == "__main__":
    nbformat.write(build(), NOTEBOOK)
    print(f"wrote {NOTEBOOK}")
