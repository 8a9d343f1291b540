"""How many numbers does a distribution over D binary pixels need?

Section 1 of the notes, as arithmetic. For x in {0, 1}^D:

    full joint table                      2^D - 1       (2^D probabilities summing to 1)
    independent pixels                    D             p(x) = prod_i p(x_i)
    chain rule, tabular conditionals      2^D - 1       sum_i 2^(i-1): one number per
                                                        (i, x_<i); the chain rule alone saves nothing
    first-order Markov chain              2D - 1        p(x_i | x_{i-1}) only
    chain rule, logistic conditionals     D(D+1)/2      FVSBN: a_i and W_ij for j < i
    NADE with H hidden units              2HD + H + D   W (H, D), c (H), V (D, H), b (D)

For 8x8 digits (D = 64) the table needs 2^64 - 1 ~ 1.8e19 numbers, the FVSBN 2,080; for
28x28 (D = 784) the FVSBN needs 307,720 and NADE with H = 500 785,284.

NADE's 2HD + H + D is what it stores (the notes' count); W's last column multiplies
x_D, which no conditional sees, so 2HD + D of them are free. ``free_parameter_count``
asks a model for its own count and otherwise counts every stored entry.
"""


def parameter_counts(D, H=None):
    """The notes' counts for D binary pixels (exact Python ints); NADE's entries need H."""
    D = int(D)
    if D < 1:
        raise ValueError(f"parameter_counts: D must be a positive number of pixels, got {D}")
    counts = {
        "full joint table": 2 ** D - 1,
        "independent (bernoulli)": D,
        "chain rule, tabular conditionals": sum(2 ** (i - 1) for i in range(1, D + 1)),
        "first-order Markov": 2 * D - 1,
        "chain rule, logistic conditionals (fvsbn)": D * (D + 1) // 2,
    }
    if H is not None:
        H = int(H)
        counts["nade (stored)"] = 2 * H * D + H + D
        counts["nade (free)"] = 2 * H * D + D
    return counts


def stored_parameter_count(model):
    """Every entry of every parameter (what the optimiser updates)."""
    return sum(p.size for p in model.parameters())


def free_parameter_count(model):
    """Entries that can change the density: the model's own count, else every stored entry."""
    own = getattr(model, "free_parameter_count", None)
    return own() if own is not None else stored_parameter_count(model)


def format_table(D, H=None):
    """The table above for one D (and H) as text, one row per model."""
    rows = parameter_counts(D, H)
    width = max(map(len, rows))
    return "\n".join(f"  {name:<{width}}  {n:>,}" if n < 10 ** 12 else f"  {name:<{width}}  {float(n):.3e}"
                     for name, n in rows.items())
