"""The loops that change a model's weights.

- fit.py: training of the original model and the retrained reference (optimizers, schedules, the compute
  settings of a run: device, threads, deterministic CUDA) through the content-keyed model cache;
- fast.py: the CUDA fast path of that training (batch order on the GPU, steps captured as CUDA graphs);
- parallel.py: several seeds trained as one stacked model (torch.func), filling the model cache;
- unlearning.py: the unlearning loop (paired retain/forget batches, a method's phases and steps, guards) and
  the probe of the loss terms that consume targets.
"""
