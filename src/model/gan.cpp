#include "vaegan/model/gan.h"

namespace vaegan {

GanForward gan_forward(Decoder& generator, Discriminator& discriminator, const torch::Tensor& x,
                       const torch::Tensor& z_prior, bool joint_batches) {
  GanForward f;
  f.x_fake = generator->forward(z_prior);  // [B, C, S, S]
  if (!joint_batches) {
    f.real = discriminator->forward(x);
    f.fake = discriminator->forward(f.x_fake);
    return f;
  }
  const int64_t b = x.size(0);
  DiscriminatorOutput d = discriminator->forward(torch::cat({x, f.x_fake}));  // [2B, ...]
  f.real = DiscriminatorOutput{d.logits.narrow(0, 0, b), d.features.narrow(0, 0, b)};
  f.fake = DiscriminatorOutput{d.logits.narrow(0, b, b), d.features.narrow(0, b, b)};
  return f;
}

GanLosses gan_losses(const GanForward& f, GanLoss form) {
  return GanLosses{discriminator_loss(f.real.logits, torch::Tensor(), f.fake.logits),
                   adversarial_loss(torch::Tensor(), f.fake.logits, form)};
}

}  // namespace vaegan
