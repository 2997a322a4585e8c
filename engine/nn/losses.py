"""Adversarial losses, the R1 and WGAN-GP gradient penalties, selected by name.

Every loss is an :class:`AdversarialLoss`: D's loss on (real, fake) outputs of the discriminator,
G's loss on D's outputs for fakes, and what the two numbers mean, which decides

- whether one-sided label smoothing has a meaning (a target probability for reals to lower) and what
  it does, or is refused;
- whether D is a *critic* (unbounded scores, trained with a gradient penalty and several D steps per G
  step, no batch norm);
- where the decision boundary between "real" and "fake" lies, which ADA's overfitting signal needs.

The names are also the choices of ``TrainConfig.loss`` (engine/runs/config.py, kept torch-free for
start-up; a test checks the two lists agree).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.errors import ConfigError

DLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""d_loss(real_outputs, fake_outputs) -> scalar."""
GLoss = Callable[[torch.Tensor], torch.Tensor]
"""g_loss(fake_outputs) -> scalar."""

WGAN_DRIFT = 1e-3
"""Weight of the drift term eps * E[D(real)^2] (Karras et al. 2018): keeps critic scores near 0, since the
Wasserstein loss alone is blind to a constant added to every score."""


def _ns_d(real: torch.Tensor, fake: torch.Tensor, smoothing: float) -> torch.Tensor:
    if smoothing == 0:
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    # Binary cross-entropy with target 1 - s for reals: -(1-s) log sigmoid(r) - s log(1 - sigmoid(r)).
    real_term = (1 - smoothing) * F.softplus(-real) + smoothing * F.softplus(real)
    return real_term.mean() + F.softplus(fake).mean()


def _ns_g(fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake).mean()


def _hinge_d(real: torch.Tensor, fake: torch.Tensor, smoothing: float) -> torch.Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def _hinge_g(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def _wgan_d(real: torch.Tensor, fake: torch.Tensor, smoothing: float) -> torch.Tensor:
    # The gradient penalty is added by the family: it needs the critic and the images, not only scores.
    return fake.mean() - real.mean() + WGAN_DRIFT * real.pow(2).mean()


def _wgan_g(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def _lsgan_d(real: torch.Tensor, fake: torch.Tensor, smoothing: float) -> torch.Tensor:
    # Mao et al. 2017 with a=0 (fake), b=1 (real); smoothing moves b to 1 - s.
    return 0.5 * (real - (1 - smoothing)).pow(2).mean() + 0.5 * fake.pow(2).mean()


def _lsgan_g(fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (fake - 1).pow(2).mean()


@dataclass(frozen=True)
class AdversarialLoss:
    """One adversarial loss and what its discriminator outputs mean."""

    name: str
    d: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
    """d(real_outputs, fake_outputs, label_smoothing) -> scalar loss of D."""
    g: GLoss
    """g(fake_outputs) -> scalar loss of G."""
    boundary: float | None
    """D's output where it cannot tell real from fake (logits: 0, LSGAN: halfway between its targets);
    None for a critic, whose scores have no fixed origin."""
    critic: bool = False
    """D is a critic (WGAN): raw scores, a gradient penalty on interpolates, n_critic D steps per G step."""
    default_n_critic: int = 1
    """D steps per G step when the setting n_critic is left unset."""
    smoothing_refusal: str = ""
    """Why one-sided label smoothing has no meaning for this loss ('' = it has one)."""

    def d_loss(self, label_smoothing: float = 0.0) -> DLoss:
        """D's loss with one-sided label smoothing ``label_smoothing`` (ConfigError where it has no meaning)."""
        if label_smoothing and self.smoothing_refusal:
            raise ConfigError(
                f"setting 'label_smoothing' has no meaning with loss '{self.name}' ({self.smoothing_refusal}); "
                "set label_smoothing=0 or choose loss 'ns' or 'lsgan'"
            )
        if not 0 <= label_smoothing < 0.5:
            raise ConfigError(f"setting 'label_smoothing' must be in [0, 0.5) (got {label_smoothing})")
        return lambda real, fake: self.d(real, fake, label_smoothing)

    def ada_signal(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """D's outputs for reals, shifted so that > 0 means "judged real" (what ADA takes the sign of).

        A critic's scores only mean something relative to each other, so a real counts as "judged real"
        when it scores above the batch's mean fake score.
        """
        if self.boundary is None:
            return real - fake.detach().float().mean()
        return real if self.boundary == 0 else real - self.boundary


LOSSES: dict[str, AdversarialLoss] = {
    loss.name: loss
    for loss in (
        AdversarialLoss("ns", _ns_d, _ns_g, boundary=0.0),
        AdversarialLoss(
            "hinge",
            _hinge_d,
            _hinge_g,
            boundary=0.0,
            smoothing_refusal="its margin already stops D from pushing reals further once they score above 1",
        ),
        AdversarialLoss(
            "wgan-gp",
            _wgan_d,
            _wgan_g,
            boundary=None,
            critic=True,
            default_n_critic=5,
            smoothing_refusal="a critic's scores are not probabilities, there is no real target to soften",
        ),
        AdversarialLoss("lsgan", _lsgan_d, _lsgan_g, boundary=0.5),
    )
}


def adversarial_loss(name: str) -> AdversarialLoss:
    """The :class:`AdversarialLoss` registered as ``name``, or ConfigError listing the known ones."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ConfigError(f"unknown loss {name!r} in setting 'loss'; use one of: {', '.join(LOSSES)}") from None


def get_loss(name: str, label_smoothing: float = 0.0) -> tuple[DLoss, GLoss]:
    """(d_loss(real_outputs, fake_outputs), g_loss(fake_outputs)) of loss ``name``.

    ``label_smoothing`` s is one-sided (reals only): 'ns' trains D towards probability 1 - s for reals,
    'lsgan' towards the target 1 - s; 'hinge' and 'wgan-gp' refuse it with a ConfigError. The
    gradient penalty of 'wgan-gp' is not part of d_loss (see :func:`gradient_penalty`).
    """
    loss = adversarial_loss(name)
    return loss.d_loss(label_smoothing), loss.g


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ||dD(x)/dx||^2 at real images (``real`` must require grad)."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(1).mean()


def interpolates(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Points on random straight lines between real and fake samples (one U(0,1) weight per sample),
    detached from both and requiring grad: where WGAN-GP measures the critic's gradient."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    mix = alpha * real.detach().float() + (1 - alpha) * fake.detach().float()
    return mix.requires_grad_(True)


def gradient_penalty(scores: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): mean over the batch of (||dD(x)/dx||_2 - 1)^2 at ``points``.

    ``scores`` are the critic's outputs (N,) for ``points`` (which must require grad); the graph is kept
    so the penalty can be minimised.
    """
    (grad,) = torch.autograd.grad(scores.float().sum(), points, create_graph=True)
    return (grad.float().flatten(1).norm(2, dim=1) - 1).pow(2).mean()
