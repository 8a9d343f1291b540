"""Short training runs the model tests share: ``steps`` training steps over a loader's epochs."""


def train_for(model, loader, steps):
    """Call ``model.train_step`` on ``steps`` batches, going round ``loader`` as often as needed."""
    done = 0
    while done < steps:
        for batch in loader:
            model.train_step(batch)
            done += 1
            if done == steps:
                return model
    return model
