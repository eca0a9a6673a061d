#include "vaegan/model/gan.h"

namespace vaegan {

GanForward gan_forward(Model& model, const torch::Tensor& x, const torch::Tensor& z_prior, BatchNormMode mode,
                       const AugmentDraw& real_augment, const AugmentDraw& fake_augment) {
  GanForward f;
  f.x_fake = model->decoder->forward(z_prior);  // [B, C, S, S]
  const std::vector<DiscriminatorOutput> d =
      discriminate_each(model->discriminator, {augment(x, real_augment), augment(f.x_fake, fake_augment)}, mode);
  f.real = d[0];
  f.fake = d[1];
  return f;
}

GanLosses gan_losses(const GanForward& f, GanLoss form, double label_smoothing) {
  return GanLosses{discriminator_loss(f.real.logits, torch::Tensor(), f.fake.logits, 0, label_smoothing),
                   adversarial_loss(torch::Tensor(), f.fake.logits, form)};
}

}  // namespace vaegan
