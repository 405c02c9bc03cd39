//! Flat parameter storage: the trainable parameters of a model are re-pointed into one contiguous buffer
//! so that gradient clipping, accumulation, AdamW and the EMA are a handful of whole-buffer operations
//! instead of a few operations per parameter tensor (hundreds of tensors in an MMDiT).

use tch::{Kind, Tensor};

/// Where each named parameter lives in the flat buffer.
#[derive(Debug, Clone)]
pub struct FlatLayout {
    /// Parameter names, sorted.
    pub names: Vec<String>,
    /// Shapes, one per name.
    pub shapes: Vec<Vec<i64>>,
    /// Offsets into the flat buffer.
    pub offsets: Vec<i64>,
    /// Total number of elements.
    pub numel: i64,
}

impl FlatLayout {
    /// The part of a flat tensor (same length as the buffer) holding parameter `i`, shaped like it.
    pub fn view(&self, flat: &Tensor, i: usize) -> Tensor {
        let n: i64 = self.shapes[i].iter().product();
        flat.narrow(0, self.offsets[i], n)
            .view(self.shapes[i].as_slice())
    }

    /// The named views of a flat tensor.
    pub fn named_views(&self, flat: &Tensor) -> Vec<(String, Tensor)> {
        (0..self.names.len())
            .map(|i| (self.names[i].clone(), self.view(flat, i)))
            .collect()
    }
}

/// Trainable parameters whose storage is one flat buffer.
#[derive(Debug)]
pub struct FlatParams {
    /// The layout.
    pub layout: FlatLayout,
    /// The parameter tensors (leaves with gradients), aliasing `flat`.
    pub params: Vec<Tensor>,
    /// The flat buffer; in-place updates of it update the parameters.
    pub flat: Tensor,
}

impl FlatParams {
    /// Moves the storage of `named` parameters into one flat buffer (values unchanged).
    pub fn new(named: Vec<(String, Tensor)>) -> FlatParams {
        let mut offsets = Vec::with_capacity(named.len());
        let mut shapes = Vec::with_capacity(named.len());
        let mut offset = 0i64;
        for (_, p) in &named {
            offsets.push(offset);
            shapes.push(p.size());
            offset += p.numel() as i64;
        }
        let (names, mut params): (Vec<String>, Vec<Tensor>) = named.into_iter().unzip();
        let flat = tch::no_grad(|| {
            let parts: Vec<Tensor> = params.iter().map(|p| p.detach().reshape([-1])).collect();
            Tensor::cat(&parts, 0)
        });
        let layout = FlatLayout {
            names,
            shapes,
            offsets,
            numel: offset,
        };
        for (i, p) in params.iter_mut().enumerate() {
            let view = layout.view(&flat, i);
            p.set_data(&view);
        }
        FlatParams {
            layout,
            params,
            flat,
        }
    }

    /// Sets all gradients to zero.
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    /// The gradients as one flat tensor (zeros for parameters that received none).
    pub fn flat_grad(&self) -> Tensor {
        tch::no_grad(|| {
            let parts: Vec<Tensor> = self
                .params
                .iter()
                .map(|p| {
                    let g = p.grad();
                    if g.defined() {
                        g.reshape([-1])
                    } else {
                        Tensor::zeros([p.numel() as i64], (Kind::Float, p.device()))
                    }
                })
                .collect();
            Tensor::cat(&parts, 0)
        })
    }
}
