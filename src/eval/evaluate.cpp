#include "vaegan/eval/evaluate.h"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <limits>

#include "vaegan/eval/fid.h"
#include "vaegan/eval/metrics.h"
#include "vaegan/model/inference.h"

namespace vaegan {
namespace F = torch::nn::functional;

torch::Tensor decoder_log_likelihood(const torch::Tensor& preactivation, const torch::Tensor& x, ReconLoss form) {
  const torch::Tensor target = (x + 1) * 0.5;
  if (form == ReconLoss::kBce) {
    return -F::binary_cross_entropy_with_logits(2 * preactivation, target,
                                                F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone))
                .flatten(1)
                .sum(1);
  }
  const double d = static_cast<double>(x[0].numel());
  const torch::Tensor p = torch::tanh(preactivation) * 0.5 + 0.5;
  return -(p - target).pow(2).flatten(1).sum(1) - 0.5 * d * std::log(M_PI);  // N(t; p, 1/2)
}

namespace {
/// log N(z; mu, diag(exp(logvar))) summed over Z: `[..., Z]` -> `[...]`.
torch::Tensor log_normal(const torch::Tensor& z, const torch::Tensor& mu, const torch::Tensor& logvar) {
  return (-0.5 * (std::log(2 * M_PI) + logvar + (z - mu).pow(2) / logvar.exp())).sum(-1);
}
}  // namespace

std::pair<torch::Tensor, torch::Tensor> vae_bounds(Model& model, const torch::Tensor& x, ReconLoss form,
                                                   int64_t iw_samples, at::Generator& gen) {
  auto [mu, logvar] = model->encoder->forward(x);  // [B, Z]
  const int64_t b = mu.size(0), z_dim = mu.size(1);
  const torch::Tensor eps = torch::randn({b, z_dim}, gen).to(mu.device());
  const torch::Tensor z = mu + torch::exp(0.5 * logvar) * eps;
  const torch::Tensor kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(1);
  const torch::Tensor elbo = decoder_log_likelihood(model->decoder->preactivation(z), x, form) - kl;
  torch::Tensor iw;
  if (iw_samples > 0) {
    std::vector<torch::Tensor> log_w;
    for (int64_t k = 0; k < iw_samples; ++k) {
      const torch::Tensor e = torch::randn({b, z_dim}, gen).to(mu.device());
      const torch::Tensor zk = mu + torch::exp(0.5 * logvar) * e;
      log_w.push_back(decoder_log_likelihood(model->decoder->preactivation(zk), x, form) +
                      log_normal(zk, torch::zeros_like(zk), torch::zeros_like(zk)) - log_normal(zk, mu, logvar));
    }
    iw = torch::logsumexp(torch::stack(log_w, 1), 1) - std::log(static_cast<double>(iw_samples));  // [B]
  }
  return {elbo, iw};
}

namespace {

nlohmann::json summary(const torch::Tensor& values) {
  const MeanStderr m = mean_and_standard_error(values);
  return {{"mean", m.mean}, {"stderr", m.standard_error}};
}

}  // namespace

double class_agreement(const std::function<torch::Tensor(const torch::Tensor&)>& classify,
                       const torch::Tensor& originals, const torch::Tensor& reconstructions, int64_t batch_size) {
  TORCH_CHECK(originals.sizes() == reconstructions.sizes(), "class_agreement: originals ", originals.sizes(),
              " and reconstructions ", reconstructions.sizes(), " differ in shape");
  const int64_t n = originals.size(0);
  int64_t agree = 0;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t b = std::min(batch_size, n - start);
    agree +=
        classify(originals.narrow(0, start, b)).eq(classify(reconstructions.narrow(0, start, b))).sum().item<int64_t>();
  }
  return n > 0 ? static_cast<double>(agree) / static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
}

torch::Tensor feature_distance_per_image(const std::function<torch::Tensor(const torch::Tensor&)>& extract,
                                         const torch::Tensor& originals, const torch::Tensor& reconstructions,
                                         int64_t batch_size) {
  TORCH_CHECK(originals.sizes() == reconstructions.sizes(), "feature_distance_per_image: originals ", originals.sizes(),
              " and reconstructions ", reconstructions.sizes(), " differ in shape");
  std::vector<torch::Tensor> out;
  for (int64_t start = 0; start < originals.size(0); start += batch_size) {
    const int64_t b = std::min(batch_size, originals.size(0) - start);
    const torch::Tensor a = extract(originals.narrow(0, start, b)).to(torch::kCPU, torch::kFloat64);
    const torch::Tensor r = extract(reconstructions.narrow(0, start, b)).to(torch::kCPU, torch::kFloat64);
    out.push_back((a - r).pow(2).flatten(1).sum(1));
  }
  return out.empty() ? torch::empty({0}, torch::kFloat64) : torch::cat(out);
}

nlohmann::json evaluate(Model& model, const ImageDataset& test, const FeatureExtractor* features, const EvalOptions& o,
                        torch::Device device) {
  torch::NoGradGuard no_grad;
  model->eval();
  const ModelConfig& config = model->config;
  nlohmann::json out = {{"model", config.type}, {"arch", config.arch}};
  const int64_t n_test = o.num_test() > 0 ? std::min(o.num_test(), test.size()) : test.size();
  const int64_t n_needed = std::max(n_test, features ? std::min(o.num_samples(), test.size()) : 0);
  const torch::Tensor real = test.first_images(n_needed);  // [N, C, S, S] in [-1, 1]
  const torch::Tensor x = real.narrow(0, 0, std::min(n_test, real.size(0)));
  const int64_t b = o.batch_size();
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed());

  if (model->encoder) {
    spdlog::info("eval: reconstructing {} test images", x.size(0));
    const torch::Tensor recon = reconstruct_images(model, x, device, b);
    out["reconstruction"] = {{"images", x.size(0)},
                             {"posterior", "mean of q(z|x)"},
                             {"pixel_scale", "[0, 1]"},
                             {"mse", summary(mse_per_image(recon, x))},
                             {"psnr_db", summary(psnr_per_image(recon, x))},
                             {"ssim", summary(ssim_per_image(recon, x))}};
    if (features && features->classify) {
      out["reconstruction"]["class_agreement"] = class_agreement(features->classify, x, recon, b);
      out["reconstruction"]["class_agreement_by"] = features->description;
    }
    if (features) {
      out["reconstruction"]["feature_distance"] = summary(feature_distance_per_image(features->extract, x, recon, b));
      out["reconstruction"]["feature_distance_by"] = features->description;
    }
  }
  if (config.type == ModelType::kVae) {
    const ReconLoss form = config.recon_loss;
    spdlog::info("eval: ELBO{} on {} test images", o.iw_samples() > 0 ? " and IW bound" : "", x.size(0));
    std::vector<torch::Tensor> iw;
    const torch::Tensor elbo = map_batches(x, b, device, [&](const torch::Tensor& xb) {
      auto [e, w] = vae_bounds(model, xb, form, o.iw_samples(), gen);
      if (w.defined()) iw.push_back(w.cpu());
      return e;
    });
    const double dims = static_cast<double>(x[0].numel());
    auto bound = [&](const torch::Tensor& v) {
      const MeanStderr m = mean_and_standard_error(v);
      return nlohmann::json{
          {"nats_per_image", m.mean}, {"stderr", m.standard_error}, {"bits_per_dim", -m.mean / (dims * std::log(2.0))}};
    };
    out["likelihood"] = {{"images", x.size(0)},
                         {"dimensions", x[0].numel()},
                         {"decoder", form == ReconLoss::kBce ? "Bernoulli on [0, 1] intensities"
                                                             : "Gaussian, variance 1/2, on [0, 1] pixels"},
                         {"elbo", bound(elbo)}};
    if (!iw.empty()) {
      out["likelihood"]["iw_bound"] = bound(torch::cat(iw));
      out["likelihood"]["iw_samples"] = o.iw_samples();
    }
  }
  if (features) {
    const int64_t n = std::min(o.num_samples(), real.size(0));
    spdlog::info("eval: features of {} prior samples and {} test images", n, n);
    const torch::Tensor z = torch::randn({n, model->latent_dim()}, gen);
    const torch::Tensor fake_features = map_batches(z, b, device, [&](const torch::Tensor& zb) {
      return features->extract(model->decoder->forward(zb)).to(torch::kFloat64);
    });
    const torch::Tensor real_features = map_batches(real.narrow(0, 0, n), b, torch::kCPU, [&](const torch::Tensor& xb) {
      return features->extract(xb).to(torch::kFloat64);
    });
    const PrecisionRecall pr = precision_recall(real_features, fake_features, o.k());
    out["samples"] = {
        {"extractor", features->description},
        {"prior_samples", n},
        {"test_images", n},
        {"frechet_distance", frechet_distance(gaussian_stats(real_features), gaussian_stats(fake_features))},
        {"precision", pr.precision},
        {"recall", pr.recall},
        {"k", o.k()}};
  }
  return out;
}

}  // namespace vaegan
