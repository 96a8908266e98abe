//! The per-session key/value cache, laid out the way llama.cpp's is (flash attention off):
//! K rows per cell after RoPE, V transposed (per KV head, per dimension, one run of cells) so the
//! weighted sum over cells reads contiguous memory. Elements are f16 by default (rounded to
//! nearest even, like F16C), or f32.

use half::f16;

/// The element type of a cache, and therefore of the query and softmax weights multiplied with it
/// (ggml converts the f32 operand to the cache's type before the dot products).
pub trait KvElem: Copy + Default + Send + Sync + 'static {
    /// Rounds an f32 into the element type.
    fn from_f32(x: f32) -> Self;
    /// Widens back to f32 (exact).
    fn to_f32(self) -> f32;
    /// The slice as f16 values when this is the f16 type (the SIMD kernels' input).
    fn as_f16(s: &[Self]) -> Option<&[f16]>;
    /// Replaces `dst` with `src` rounded into the element type.
    fn fill_from_f32(dst: &mut Vec<Self>, src: &[f32]);
}

impl KvElem for f16 {
    fn from_f32(x: f32) -> Self {
        f16::from_f32(x)
    }
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    fn as_f16(s: &[Self]) -> Option<&[f16]> {
        Some(s)
    }
    fn fill_from_f32(dst: &mut Vec<Self>, src: &[f32]) {
        dst.clear();
        dst.resize(src.len(), f16::ZERO);
        // The lengths are equal by construction, so the kernel cannot refuse them; the
        // per-element conversion is the same rounding, kept as the fallback.
        if tramontane_kernels::vecmath::f32_to_f16(src, dst).is_err() {
            dst.clear();
            dst.extend(src.iter().map(|&x| f16::from_f32(x)));
        }
    }
}

impl KvElem for f32 {
    fn from_f32(x: f32) -> Self {
        x
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn as_f16(_: &[Self]) -> Option<&[f16]> {
        None
    }
    fn fill_from_f32(dst: &mut Vec<Self>, src: &[f32]) {
        dst.clear();
        dst.extend_from_slice(src);
    }
}

/// Which element type a session's cache uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KvCacheType {
    /// Half precision, llama.cpp's default.
    #[default]
    F16,
    /// Single precision: twice the memory, no rounding of K, V, Q or the softmax weights.
    F32,
}

/// Shape of a cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvShape {
    /// Transformer layers.
    pub n_layer: usize,
    /// Cells (the session's context length).
    pub n_ctx: usize,
    /// KV heads.
    pub n_kv_head: usize,
    /// Dimensions per head.
    pub head_dim: usize,
}

impl KvShape {
    /// Values per cell per layer for K (or V): `n_kv_head * head_dim`.
    pub fn kv_width(&self) -> usize {
        self.n_kv_head * self.head_dim
    }
}

/// A cache of one element type.
#[derive(Clone, Debug)]
pub struct TypedKvCache<E> {
    shape: KvShape,
    /// `[layer][cell][kv_head * head_dim]`.
    k: Vec<E>,
    /// `[layer][kv_head][dim][cell]`.
    v_t: Vec<E>,
}

impl<E: KvElem> TypedKvCache<E> {
    fn new(shape: KvShape) -> Self {
        let n = shape.n_layer * shape.n_ctx * shape.kv_width();
        TypedKvCache {
            shape,
            k: vec![E::default(); n],
            v_t: vec![E::default(); n],
        }
    }

    /// The shape this cache was made with.
    pub fn shape(&self) -> KvShape {
        self.shape
    }

    /// Stores K and V rows (one per token, `kv_width` wide) for cells `first..first + n`.
    /// The caller has checked that the cells exist.
    pub fn store(&mut self, layer: usize, first: usize, k_rows: &[f32], v_rows: &[f32]) {
        let s = self.shape;
        let w = s.kv_width();
        let layer_base = layer * s.n_ctx * w;
        for (t, (k_row, v_row)) in k_rows
            .chunks_exact(w)
            .zip(v_rows.chunks_exact(w))
            .enumerate()
        {
            let cell = first + t;
            let k_dst = &mut self.k[layer_base + cell * w..layer_base + (cell + 1) * w];
            for (d, &x) in k_dst.iter_mut().zip(k_row) {
                *d = E::from_f32(x);
            }
            // Feature c of the row (head h, dim i) goes to run (h*head_dim + i) at this cell.
            for (c, &x) in v_row.iter().enumerate() {
                self.v_t[layer_base + c * s.n_ctx + cell] = E::from_f32(x);
            }
        }
    }

    /// The K row of one KV head at one cell (`head_dim` long).
    pub fn k_head(&self, layer: usize, cell: usize, kv_head: usize) -> &[E] {
        let s = self.shape;
        let start = (layer * s.n_ctx + cell) * s.kv_width() + kv_head * s.head_dim;
        &self.k[start..start + s.head_dim]
    }

    /// K of one KV head from cell 0 on: cell `c`'s row starts at `c * kv_width` and is
    /// `head_dim` long.
    pub fn k_rows(&self, layer: usize, kv_head: usize) -> &[E] {
        let s = self.shape;
        let start = layer * s.n_ctx * s.kv_width() + kv_head * s.head_dim;
        &self.k[start..(layer + 1) * s.n_ctx * s.kv_width()]
    }

    /// V of one KV head: dimension `d`'s run of cells starts at `d * n_ctx`.
    pub fn v_rows(&self, layer: usize, kv_head: usize) -> &[E] {
        let s = self.shape;
        let start = layer * s.n_ctx * s.kv_width() + kv_head * s.head_dim * s.n_ctx;
        &self.v_t[start..(layer + 1) * s.n_ctx * s.kv_width()]
    }

    /// The first `n_cells` cells of V for one KV head and dimension.
    pub fn v_run(&self, layer: usize, kv_head: usize, dim: usize, n_cells: usize) -> &[E] {
        let s = self.shape;
        let start = layer * s.n_ctx * s.kv_width() + (kv_head * s.head_dim + dim) * s.n_ctx;
        &self.v_t[start..start + n_cells]
    }
}

/// A session's cache, of either element type.
#[derive(Clone, Debug)]
pub enum KvCache {
    /// f16 elements.
    F16(TypedKvCache<f16>),
    /// f32 elements.
    F32(TypedKvCache<f32>),
}

impl KvCache {
    /// A zeroed cache.
    pub fn new(shape: KvShape, ty: KvCacheType) -> KvCache {
        match ty {
            KvCacheType::F16 => KvCache::F16(TypedKvCache::new(shape)),
            KvCacheType::F32 => KvCache::F32(TypedKvCache::new(shape)),
        }
    }

    /// The shape this cache was made with.
    pub fn shape(&self) -> KvShape {
        match self {
            KvCache::F16(c) => c.shape(),
            KvCache::F32(c) => c.shape(),
        }
    }

    /// Stores K and V rows for cells `first..`; see [`TypedKvCache::store`].
    pub fn store(&mut self, layer: usize, first: usize, k_rows: &[f32], v_rows: &[f32]) {
        match self {
            KvCache::F16(c) => c.store(layer, first, k_rows, v_rows),
            KvCache::F32(c) => c.store(layer, first, k_rows, v_rows),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_places_k_by_cell_and_v_transposed() {
        let shape = KvShape {
            n_layer: 2,
            n_ctx: 4,
            n_kv_head: 2,
            head_dim: 2,
        };
        let mut c = TypedKvCache::<f32>::new(shape);
        // Two tokens at cells 1 and 2 of layer 1; row = [h0d0, h0d1, h1d0, h1d1].
        let k = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let v = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0];
        c.store(1, 1, &k, &v);
        assert_eq!(c.k_head(1, 2, 1), &[7.0, 8.0]);
        assert_eq!(c.k_head(0, 2, 1), &[0.0, 0.0]);
        assert_eq!(c.v_run(1, 1, 0, 3), &[0.0, 30.0, 70.0]);
        assert_eq!(c.v_run(1, 0, 1, 4), &[0.0, 20.0, 60.0, 0.0]);
    }

    #[test]
    fn f16_cache_rounds_to_nearest_even() {
        // 1 + 2^-11 lies halfway between the f16 values 1 and 1 + 2^-10: ties go to even (1).
        let shape = KvShape {
            n_layer: 1,
            n_ctx: 1,
            n_kv_head: 1,
            head_dim: 1,
        };
        let mut c = TypedKvCache::<f16>::new(shape);
        c.store(0, 0, &[1.0 + 1.0 / 2048.0], &[1.0 + 3.0 / 2048.0]);
        assert_eq!(c.k_head(0, 0, 0)[0].to_f32(), 1.0);
        assert_eq!(c.v_run(0, 0, 0, 1)[0].to_f32(), 1.0 + 2.0 / 1024.0);
    }
}
