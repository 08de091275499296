"""The PyTensor backend: the building blocks a lowered model is made of (`ops`) and the backend that calls them."""
