//! Text generation from a [`LlamaForCausalLM`]: the prompt once through the decoder, then one
//! token per step against the [`KvCache`], each next token chosen on the host by
//! [`Sampler`] (greedy, temperature, top-k, top-p) and handed to the caller as soon as it is
//! chosen, so a front end can stream it.
//!
//! Logits are read with `into_data_async`, so the same loop runs in the browser.

use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::llama::{KvCache, LlamaForCausalLM};

/// How the next token is chosen and when generation stops; one type for the CLI, the page and
/// the job file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationSettings {
    /// At most this many new tokens.
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: usize,
    /// Softmax temperature; 0 picks the most likely token (greedy decoding).
    #[serde(default)]
    pub temperature: f64,
    /// Sample only among the `top_k` most likely tokens; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
    /// Sample only among the most likely tokens whose probabilities add up to `top_p`
    /// (nucleus sampling); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Seed of the sampling draws: the same seed, prompt and model give the same text.
    #[serde(default)]
    pub seed: u64,
}

fn default_max_new_tokens() -> usize {
    128
}

impl Default for GenerationSettings {
    fn default() -> Self {
        Self {
            max_new_tokens: default_max_new_tokens(),
            temperature: 0.0,
            top_k: None,
            top_p: None,
            seed: 0,
        }
    }
}

impl GenerationSettings {
    /// Checks the values a user typed.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Generation(m));
        if self.max_new_tokens == 0 {
            return bad("max_new_tokens must be at least 1".into());
        }
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad(format!(
                "temperature must be 0 (greedy) or positive, found {}",
                self.temperature
            ));
        }
        if self.top_k == Some(0) {
            return bad("top_k must be at least 1; leave it out to keep every token".into());
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return bad(format!("top_p must be in (0, 1], found {p}"));
        }
        Ok(())
    }
}

/// Chooses next tokens from logits under [`GenerationSettings`], with its own seeded RNG.
#[derive(Debug)]
pub struct Sampler {
    settings: GenerationSettings,
    rng: StdRng,
}

impl Sampler {
    /// A sampler drawing from `settings.seed`.
    pub fn new(settings: &GenerationSettings) -> Result<Self, ModelError> {
        settings.validate()?;
        Ok(Self {
            settings: settings.clone(),
            rng: StdRng::seed_from_u64(settings.seed),
        })
    }

    /// The candidate tokens and their probabilities after temperature, top-k and top-p, most
    /// likely first (what [`Sampler::sample`] draws from).
    pub fn distribution(&self, logits: &[f32]) -> Vec<(u32, f64)> {
        let t = self.settings.temperature;
        let mut order: Vec<u32> = (0..logits.len() as u32).collect();
        // NaN logits sort last and never win.
        order.sort_by(|&a, &b| {
            let (x, y) = (logits[a as usize], logits[b as usize]);
            y.partial_cmp(&x)
                .unwrap_or_else(|| x.is_nan().cmp(&y.is_nan()))
        });
        if t == 0.0 {
            return order.first().map(|&id| (id, 1.0)).into_iter().collect();
        }
        if let Some(k) = self.settings.top_k {
            order.truncate(k);
        }
        let top = f64::from(logits[order[0] as usize]);
        let weights: Vec<f64> = order
            .iter()
            .map(|&id| ((f64::from(logits[id as usize]) - top) / t).exp())
            .collect();
        let total: f64 = weights.iter().sum();
        let mut out: Vec<(u32, f64)> = order
            .into_iter()
            .zip(weights)
            .map(|(id, w)| (id, w / total))
            .collect();
        if let Some(p) = self.settings.top_p {
            // Keep the smallest prefix whose mass reaches p (always the most likely token).
            let mut mass = 0.0;
            let keep = out
                .iter()
                .position(|&(_, q)| {
                    mass += q;
                    mass >= p
                })
                .map_or(out.len(), |i| i + 1);
            out.truncate(keep);
            let kept: f64 = out.iter().map(|&(_, q)| q).sum();
            for (_, q) in &mut out {
                *q /= kept;
            }
        }
        out.retain(|&(_, q)| q.is_finite() && q > 0.0);
        out
    }

    /// The next token for `logits` (one row over the vocabulary), or an error when every
    /// logit is NaN or infinite.
    pub fn sample(&mut self, logits: &[f32]) -> Result<u32, ModelError> {
        if !logits.iter().any(|x| x.is_finite()) {
            return Err(ModelError::Generation(
                "the model produced no finite logit (NaN weights?)".into(),
            ));
        }
        let dist = self.distribution(logits);
        if dist.len() == 1 {
            return Ok(dist[0].0);
        }
        let mut draw: f64 = self.rng.random();
        for &(id, q) in &dist {
            if draw < q {
                return Ok(id);
            }
            draw -= q;
        }
        // Rounding left a sliver of mass: the least likely candidate kept takes it.
        dist.last()
            .map(|&(id, _)| id)
            .ok_or_else(|| ModelError::Generation("no candidate token".into()))
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced a stop token (end of turn).
    Stop,
    /// `max_new_tokens` were generated.
    Length,
    /// The caller asked to stop.
    Cancelled,
}

/// Continues `prompt` with up to `settings.max_new_tokens` tokens, handing each new token to
/// `on_token` as soon as it is chosen (return `false` to stop). A token in `stop` ends the
/// answer and is not part of it. Returns the new tokens and why generation ended.
pub async fn generate(
    model: &LlamaForCausalLM,
    prompt: &[u32],
    stop: &[u32],
    settings: &GenerationSettings,
    mut on_token: impl FnMut(u32) -> bool,
) -> Result<(Vec<u32>, StopReason), ModelError> {
    if prompt.is_empty() {
        return Err(ModelError::Generation("the prompt has no tokens".into()));
    }
    let mut sampler = Sampler::new(settings)?;
    let device = model.devices().into_iter().next().ok_or_else(|| {
        ModelError::Generation("the model has no parameters on any device".into())
    })?;
    let mut cache = KvCache::new();
    let mut input: Vec<i64> = prompt.iter().map(|&id| i64::from(id)).collect();
    let mut answer = Vec::new();
    while answer.len() < settings.max_new_tokens {
        let n = input.len();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(input, [1, n]), &device);
        let logits = model.forward_cached(ids, &mut cache);
        let [_, _, vocab] = logits.dims();
        let last = logits.slice([0..1, n - 1..n, 0..vocab]).reshape([vocab]);
        let row = last
            .into_data_async()
            .await
            .map_err(|e| ModelError::Generation(format!("reading logits failed: {e:?}")))?
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| ModelError::Generation(format!("reading logits failed: {e:?}")))?;
        let next = sampler.sample(&row)?;
        if stop.contains(&next) {
            return Ok((answer, StopReason::Stop));
        }
        answer.push(next);
        if !on_token(next) {
            return Ok((answer, StopReason::Cancelled));
        }
        input = vec![i64::from(next)];
    }
    Ok((answer, StopReason::Length))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(temperature: f64, top_k: Option<usize>, top_p: Option<f64>) -> Sampler {
        Sampler::new(&GenerationSettings {
            temperature,
            top_k,
            top_p,
            ..GenerationSettings::default()
        })
        .expect("valid settings")
    }

    #[test]
    fn greedy_picks_the_largest_logit() {
        let mut s = sampler(0.0, None, None);
        assert_eq!(s.sample(&[0.1, 3.0, f32::NAN, 2.9]).expect("token"), 1);
    }

    #[test]
    fn temperature_is_a_softmax_of_scaled_logits() {
        let s = sampler(2.0, None, None);
        let d = s.distribution(&[0.0, 2.0_f32.ln() * 2.0]);
        // exp(ln2·2/2) = 2: probabilities 2/3 and 1/3.
        assert_eq!(d[0].0, 1);
        assert!((d[0].1 - 2.0 / 3.0).abs() < 1e-6 && (d[1].1 - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn top_k_and_top_p_cut_the_tail_and_renormalise() {
        let logits = [4.0f32.ln(), 3.0f32.ln(), 2.0f32.ln(), 1.0f32.ln()]; // 0.4 0.3 0.2 0.1
        let d = sampler(1.0, Some(2), None).distribution(&logits);
        assert_eq!(d.iter().map(|x| x.0).collect::<Vec<_>>(), [0, 1]);
        assert!((d[0].1 - 4.0 / 7.0).abs() < 1e-6);
        // top_p 0.65: 0.4 + 0.3 reaches it, the rest goes.
        let d = sampler(1.0, None, Some(0.65)).distribution(&logits);
        assert_eq!(d.iter().map(|x| x.0).collect::<Vec<_>>(), [0, 1]);
        // top_p 0.1: only the most likely token is left.
        let d = sampler(1.0, None, Some(0.1)).distribution(&logits);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0, 0);
    }

    #[test]
    fn sampling_follows_the_distribution_and_the_seed() {
        let logits = [4.0f32.ln(), 3.0f32.ln(), 2.0f32.ln(), 1.0f32.ln()];
        let mut s = sampler(1.0, None, None);
        let mut counts = [0usize; 4];
        for _ in 0..20_000 {
            counts[s.sample(&logits).expect("token") as usize] += 1;
        }
        for (c, p) in counts.iter().zip([0.4, 0.3, 0.2, 0.1]) {
            let share = *c as f64 / 20_000.0;
            assert!((share - p).abs() < 0.015, "{counts:?}");
        }
        let draws = |seed| {
            let mut s = Sampler::new(&GenerationSettings {
                temperature: 1.0,
                seed,
                ..GenerationSettings::default()
            })
            .expect("valid");
            (0..32)
                .map(|_| s.sample(&logits).expect("token"))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
    }

    #[test]
    fn bad_settings_and_nan_logits_are_errors() {
        for bad in [
            GenerationSettings {
                temperature: -1.0,
                ..GenerationSettings::default()
            },
            GenerationSettings {
                top_p: Some(0.0),
                ..GenerationSettings::default()
            },
            GenerationSettings {
                top_k: Some(0),
                ..GenerationSettings::default()
            },
            GenerationSettings {
                max_new_tokens: 0,
                ..GenerationSettings::default()
            },
        ] {
            assert!(Sampler::new(&bad).is_err(), "{bad:?}");
        }
        let mut s = sampler(1.0, None, None);
        assert!(s.sample(&[f32::NAN, f32::NAN]).is_err());
    }
}
