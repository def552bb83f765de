//! Gradient checkpointing over a stack of layers, as transformers' `gradient_checkpointing`
//! does it, shared by the encoder ([`crate::bert`]) and the decoder ([`crate::llama`]).
//!
//! [`forward`] runs each layer with its parameters frozen (a `no_grad` clone, so autodiff
//! records nothing) and keeps only the layer's input and where its dropout masks start in the
//! step's stream ([`crate::dropout::position`]). The caller backpropagates its head and loss
//! from the last output; [`Kept::backward`] then runs each layer again, last first, from its
//! input with the same masks ([`crate::dropout::set_position`]) and backpropagates it alone from
//! the gradient of its output. Layers below the first one with a trained parameter are neither
//! kept nor recomputed: their inputs need no gradient, as one autodiff pass does not record
//! them either.

use burn::module::Module;
use burn::tensor::{Gradients, Tensor};

/// What the forward pass kept: the first layer's input (tracked when the embeddings train)
/// and, for each layer that is recomputed, its input and its dropout masks' start.
pub(crate) struct Kept {
    x0: Tensor<3>,
    layers: Vec<Option<(Tensor<3>, (u64, u64))>>,
    /// Whether anything at or below each layer trains.
    wanted: Vec<bool>,
}

/// Runs `layers` from `x0` with their parameters frozen (`forward` runs one layer); returns the
/// last layer's output, untracked unless a layer trains (the head backpropagates into it), and
/// what the backward pass needs.
pub(crate) fn forward<L: Module + Clone>(
    layers: &[L],
    x0: Tensor<3>,
    forward: &mut dyn FnMut(&L, Tensor<3>) -> Tensor<3>,
) -> (Tensor<3>, Kept) {
    let mut below = x0.is_tracked();
    let wanted: Vec<bool> = layers
        .iter()
        .map(|layer| {
            below |= crate::lora::trainable_params(layer) > 0;
            below
        })
        .collect();
    let mut kept = Vec::with_capacity(layers.len());
    let mut x = x0.clone().detach();
    for (layer, &wanted) in layers.iter().zip(&wanted) {
        let at = crate::dropout::position();
        let next = forward(&layer.clone().no_grad(), x.clone());
        kept.push(wanted.then_some((x, at)));
        x = next;
    }
    if wanted.last() == Some(&true) {
        x = x.require_grad();
    }
    let kept = Kept {
        x0,
        layers: kept,
        wanted,
    };
    (x, kept)
}

impl Kept {
    /// The backward pass through the layers from `upstream`, the gradient of the last layer's
    /// output (none: nothing trains), each layer's gradients to `sink`, then the embeddings'
    /// when they train. Leaves the dropout stream where it found it.
    pub(crate) fn backward<L>(
        self,
        layers: &[L],
        mut upstream: Option<Tensor<3>>,
        forward: &mut dyn FnMut(&L, Tensor<3>) -> Tensor<3>,
        sink: &mut dyn FnMut(Gradients),
    ) {
        let end = crate::dropout::position();
        let embeddings_train = self.x0.is_tracked();
        for (i, (layer, kept)) in layers.iter().zip(self.layers).enumerate().rev() {
            let (Some((input, at)), Some(up)) = (kept, upstream.take()) else {
                break;
            };
            crate::dropout::set_position(at);
            // The input's gradient is needed when a layer below, or the embeddings, train.
            let below = if i > 0 {
                self.wanted[i - 1]
            } else {
                embeddings_train
            };
            let input = if below { input.require_grad() } else { input };
            let out = forward(layer, input.clone());
            let grads = (out * up).sum().backward();
            upstream = input.grad(&grads).map(Tensor::<3>::from_inner);
            sink(grads);
        }
        if let Some(up) = upstream.filter(|_| embeddings_train) {
            sink((self.x0 * up).sum().backward());
        }
        crate::dropout::set_position(end);
    }
}
