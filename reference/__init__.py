"""The model solution: every function of the student contract, in pure NumPy."""
