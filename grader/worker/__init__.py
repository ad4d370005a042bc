"""The only code that runs next to student code.

It imports the standard library and NumPy, and nothing from `reference`,
`assignments` or the rest of `grader`: what it does not import, a student cannot
reach through it. Everything it sends back is untrusted and is validated by the
grader (see `codec.decode`).
"""
