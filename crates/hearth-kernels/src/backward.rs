//! The quantized linear under autodiff: `y = x·Wᵀ` records a backward step whose state is the
//! quantized blocks (shared, not copied) and nothing else, so no dense weight lives from the
//! forward pass to the backward pass. The step computes only `∂x = g·W`, from the blocks again;
//! `W` is frozen and gets no gradient.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::{FloatTensor, IntTensor};

use crate::extension::QuantLinearBackend;

#[derive(Debug)]
struct QuantLinearBackward;

impl<B: QuantLinearBackend> Backward<B, 1> for QuantLinearBackward {
    /// The blocks and the number of bits per value.
    type State = (IntTensor<B>, u32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (blocks, bits) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            B::quant_linear_transposed(grad, blocks, bits)
        });
    }
}

impl<B: QuantLinearBackend, C: CheckpointStrategy> QuantLinearBackend for Autodiff<B, C> {
    fn quant_linear(x: FloatTensor<Self>, blocks: IntTensor<Self>, bits: u32) -> FloatTensor<Self> {
        let (x, node) = x.into_parts();
        // Compute-bound: under gradient checkpointing the output is kept, not recomputed.
        match QuantLinearBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::quant_linear(x, blocks.clone(), bits);
                prep.finish((blocks, bits), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::quant_linear(x, blocks, bits)),
        }
    }

    /// Not differentiable itself (no second-order gradients through a frozen base).
    fn quant_linear_transposed(
        grad: FloatTensor<Self>,
        blocks: IntTensor<Self>,
        bits: u32,
    ) -> FloatTensor<Self> {
        <FloatTensor<Self>>::new(B::quant_linear_transposed(
            grad.into_primitive(),
            blocks,
            bits,
        ))
    }

    /// A constant: the blocks are frozen, so the rows start no graph.
    fn quant_dequantize(blocks: IntTensor<Self>, bits: u32) -> FloatTensor<Self> {
        <FloatTensor<Self>>::new(B::quant_dequantize(blocks, bits))
    }
}
