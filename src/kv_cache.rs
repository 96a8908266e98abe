//! The per-session key/value cache, laid out the way llama.cpp's is (flash attention off):
//! K rows per cell after RoPE, V transposed (per KV head, per dimension, one run of cells) so the
//! weighted sum over cells reads contiguous memory. Elements are f16 by default (rounded to
//! nearest even, like F16C), or f32.
//!
//! Memory follows use: each layer starts empty and grows (fallibly, by half again, in steps of
//! [`GROW_CELLS`]) as tokens arrive, up to its limit. A full-attention layer's limit is the
//! context length and position `p` lives in cell `p`. A sliding-window layer's limit is its
//! ring ([`ring_cells`]): position `p` lives in cell `p % ring`, which is where llama.cpp's
//! SWA cache puts it when one sequence is decoded in order, so attention sums over the cells
//! in the same order.

use half::f16;

use crate::{Error, Result};

/// Layers grow their cell count to a multiple of this.
pub const GROW_CELLS: usize = 32;

/// llama.cpp pads its cache sizes (and the number of attended cells) to a multiple of this.
pub const CELL_PAD: usize = 256;

/// The ring size of a sliding-window layer: llama.cpp's SWA cache size for one sequence,
/// `pad(window + max_batch, 256)`. A batch of at most `max_batch` tokens then never overwrites
/// a cell that one of its own queries still sees.
pub fn ring_cells(window: usize, max_batch: usize) -> usize {
    window
        .saturating_add(max_batch)
        .div_ceil(CELL_PAD)
        .saturating_mul(CELL_PAD)
}

/// The element type of a cache, and therefore of the query and softmax weights multiplied with it
/// (ggml converts the f32 operand to the cache's type before the dot products).
pub trait KvElem: Copy + Default + Send + Sync + 'static {
    /// Bytes per element.
    const BYTES: usize;
    /// Rounds an f32 into the element type.
    fn from_f32(x: f32) -> Self;
    /// Widens back to f32 (exact).
    fn to_f32(self) -> f32;
    /// The slice as f16 values when this is the f16 type (the SIMD kernels' input).
    fn as_f16(s: &[Self]) -> Option<&[f16]>;
    /// Replaces `dst` with `src` rounded into the element type.
    fn fill_from_f32(dst: &mut Vec<Self>, src: &[f32]);
    /// The little-endian bytes of one element.
    fn to_le(self, out: &mut Vec<u8>);
    /// The element from its little-endian bytes (`BYTES` long).
    fn from_le(bytes: &[u8]) -> Self;
}

impl KvElem for f16 {
    const BYTES: usize = 2;
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
    fn to_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bits().to_le_bytes());
    }
    fn from_le(bytes: &[u8]) -> Self {
        f16::from_bits(u16::from_le_bytes([bytes[0], bytes[1]]))
    }
}

impl KvElem for f32 {
    const BYTES: usize = 4;
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
    fn to_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn from_le(bytes: &[u8]) -> Self {
        f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
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

impl KvCacheType {
    /// Bytes per element.
    pub fn bytes(self) -> usize {
        match self {
            KvCacheType::F16 => 2,
            KvCacheType::F32 => 4,
        }
    }
}

/// Shape of a cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvShape {
    /// KV heads.
    pub n_kv_head: usize,
    /// Dimensions per head.
    pub head_dim: usize,
    /// The most cells each layer may hold: the context length, or a sliding-window layer's
    /// ring (see [`ring_cells`]).
    pub layer_cells: Vec<usize>,
}

impl KvShape {
    /// Values per cell per layer for K (or V): `n_kv_head * head_dim`.
    pub fn kv_width(&self) -> usize {
        self.n_kv_head * self.head_dim
    }

    /// Number of layers.
    pub fn n_layer(&self) -> usize {
        self.layer_cells.len()
    }
}

/// Where the positions `0..n_pos` of a layer sit in its cells, and which cells attention reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellMap {
    /// Cells in use: `min(n_pos, limit)`.
    pub n_cells: usize,
    /// Whether the ring has wrapped (some positions were overwritten): cell `c` then holds the
    /// latest position below `n_pos` that is `c` modulo the ring size.
    pub wrapped: bool,
    /// Positions held in total (the next position is `n_pos`).
    pub n_pos: usize,
}

impl CellMap {
    /// The position held in cell `c`.
    pub fn position(&self, c: usize) -> usize {
        if self.wrapped {
            // n_cells is the ring size here, and n_pos > n_cells > c.
            c + self.n_cells * ((self.n_pos - 1 - c) / self.n_cells)
        } else {
            c
        }
    }
}

/// One layer's cells.
#[derive(Debug)]
struct LayerKv<E> {
    /// The most cells this layer holds.
    limit: usize,
    /// Cells allocated (K and V runs are this long).
    cap: usize,
    /// `[kv_head][cell][dim]`, runs of `cap` cells: one head's keys are one contiguous
    /// stretch, which `K·Q` streams (interleaved heads made it read a third of every row).
    k: Vec<E>,
    /// `[kv_head][dim][cell]`, runs of `cap` cells.
    v_t: Vec<E>,
}

impl<E> LayerKv<E> {
    /// Where head `h`'s key of cell `cell` lies in `k`.
    fn k_range(&self, h: usize, cell: usize, head_dim: usize) -> std::ops::Range<usize> {
        let at = (h * self.cap + cell) * head_dim;
        at..at + head_dim
    }
}

/// A cache of one element type.
#[derive(Debug)]
pub struct TypedKvCache<E> {
    shape: KvShape,
    layers: Vec<LayerKv<E>>,
}

fn alloc_error(what: &str, n: usize) -> Error {
    Error::OutOfMemory {
        what: format!("{what} ({n} elements)"),
    }
}

/// A vector of `n` default elements, or an error instead of an abort when memory runs out.
fn try_filled<E: Copy + Default>(what: &str, n: usize) -> Result<Vec<E>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| alloc_error(what, n))?;
    v.resize(n, E::default());
    Ok(v)
}

impl<E: KvElem> TypedKvCache<E> {
    fn new(shape: KvShape) -> Self {
        let layers = shape
            .layer_cells
            .iter()
            .map(|&limit| LayerKv {
                limit,
                cap: 0,
                k: Vec::new(),
                v_t: Vec::new(),
            })
            .collect();
        TypedKvCache { shape, layers }
    }

    /// The shape this cache was made with.
    pub fn shape(&self) -> &KvShape {
        &self.shape
    }

    /// Grows every layer so that it can hold positions `0..n_pos` (its limit at most).
    /// Nothing is allocated when they fit already; on failure the cache is unchanged.
    fn reserve(&mut self, n_pos: usize) -> Result<()> {
        let w = self.shape.kv_width();
        for layer in &mut self.layers {
            let needed = n_pos.min(layer.limit);
            if needed <= layer.cap {
                continue;
            }
            let grown = layer.cap.saturating_add(layer.cap / 2);
            let new_cap = needed
                .max(grown)
                .div_ceil(GROW_CELLS)
                .saturating_mul(GROW_CELLS)
                .min(layer.limit);
            let n = new_cap
                .checked_mul(w)
                .ok_or_else(|| alloc_error("KV cache layer", usize::MAX))?;
            let mut k = try_filled::<E>("KV cache keys", n)?;
            let mut v_t = try_filled::<E>("KV cache values", n)?;
            let (old, hd) = (layer.cap, self.shape.head_dim);
            // K and V runs get longer: move each run to its new start.
            for (h, run) in k.chunks_exact_mut(new_cap * hd).enumerate() {
                run[..old * hd].copy_from_slice(&layer.k[h * old * hd..(h + 1) * old * hd]);
            }
            for (d, run) in v_t.chunks_exact_mut(new_cap).enumerate() {
                run[..old].copy_from_slice(&layer.v_t[d * old..(d + 1) * old]);
            }
            layer.k = k;
            layer.v_t = v_t;
            layer.cap = new_cap;
        }
        Ok(())
    }

    /// Bytes allocated.
    fn bytes(&self) -> usize {
        let cells: usize = self.layers.iter().map(|l| l.cap).sum();
        cells * 2 * self.shape.kv_width() * E::BYTES
    }

    /// The cell map of `layer` when it holds positions `0..n_pos`.
    pub fn cells(&self, layer: usize, n_pos: usize) -> CellMap {
        let limit = self.layers.get(layer).map_or(0, |l| l.limit);
        CellMap {
            n_cells: n_pos.min(limit),
            wrapped: n_pos > limit,
            n_pos,
        }
    }

    /// Stores K and V rows (one per token, `kv_width` wide) for positions `first..first + n`.
    /// The caller has reserved room for them.
    pub fn store(&mut self, layer: usize, first: usize, k_rows: &[f32], v_rows: &[f32]) {
        let (w, hd) = (self.shape.kv_width(), self.shape.head_dim);
        let Some(l) = self.layers.get_mut(layer) else {
            return;
        };
        for (t, (k_row, v_row)) in k_rows
            .chunks_exact(w)
            .zip(v_rows.chunks_exact(w))
            .enumerate()
        {
            let cell = (first + t) % l.limit.max(1);
            if cell >= l.cap {
                continue;
            }
            for (h, k_head) in k_row.chunks_exact(hd.max(1)).enumerate() {
                let at = l.k_range(h, cell, hd);
                for (d, &x) in l.k[at].iter_mut().zip(k_head) {
                    *d = E::from_f32(x);
                }
            }
            // Feature c of the row (head h, dim i) goes to run (h*head_dim + i) at this cell.
            for (c, &x) in v_row.iter().enumerate() {
                l.v_t[c * l.cap + cell] = E::from_f32(x);
            }
        }
    }

    /// K of one KV head from cell 0 on: cell `c`'s row starts at `c * head_dim`.
    pub fn k_rows(&self, layer: usize, kv_head: usize) -> &[E] {
        let hd = self.shape.head_dim;
        self.layers
            .get(layer)
            .and_then(|l| l.k.get(kv_head * l.cap * hd..))
            .unwrap_or(&[])
    }

    /// V of one KV head: dimension `d`'s run of cells starts at `d * v_stride(layer)`.
    pub fn v_rows(&self, layer: usize, kv_head: usize) -> &[E] {
        self.layers
            .get(layer)
            .and_then(|l| l.v_t.get(kv_head * self.shape.head_dim * l.cap..))
            .unwrap_or(&[])
    }

    /// The distance between two V runs of `layer`.
    pub fn v_stride(&self, layer: usize) -> usize {
        self.layers.get(layer).map_or(0, |l| l.cap)
    }

    /// A copy, or an error when memory runs out.
    fn try_clone(&self) -> Result<Self> {
        let mut layers = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let mut k = Vec::new();
            k.try_reserve_exact(l.k.len())
                .map_err(|_| alloc_error("KV cache copy", l.k.len()))?;
            k.extend_from_slice(&l.k);
            let mut v_t = Vec::new();
            v_t.try_reserve_exact(l.v_t.len())
                .map_err(|_| alloc_error("KV cache copy", l.v_t.len()))?;
            v_t.extend_from_slice(&l.v_t);
            layers.push(LayerKv {
                limit: l.limit,
                cap: l.cap,
                k,
                v_t,
            });
        }
        Ok(TypedKvCache {
            shape: self.shape.clone(),
            layers,
        })
    }

    /// A new cache of the same shape holding only the cells of positions `0..n_pos` (a layer
    /// that has not wrapped holds position `p` in cell `p`), copied directly: room for `n_pos`
    /// positions is allocated, not this cache's capacity.
    fn try_clone_prefix(&self, n_pos: usize) -> Result<Self> {
        let mut copy = Self::new(self.shape.clone());
        copy.reserve(n_pos)?;
        let (w, hd) = (self.shape.kv_width(), self.shape.head_dim);
        for (dst, src) in copy.layers.iter_mut().zip(&self.layers) {
            let n = n_pos.min(src.limit).min(src.cap);
            for h in 0..self.shape.n_kv_head {
                dst.k[h * dst.cap * hd..][..n * hd]
                    .copy_from_slice(&src.k[h * src.cap * hd..][..n * hd]);
            }
            for d in 0..w {
                dst.v_t[d * dst.cap..d * dst.cap + n]
                    .copy_from_slice(&src.v_t[d * src.cap..d * src.cap + n]);
            }
        }
        Ok(copy)
    }

    /// Appends the cells that hold positions `0..n_pos` of every layer to `out`: per layer,
    /// K then V, little-endian; K cell by cell (each cell's heads side by side), V dimension
    /// by dimension.
    fn write_cells(&self, n_pos: usize, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let (w, hd) = (self.shape.kv_width(), self.shape.head_dim);
        let mut buf = Vec::new();
        for l in &self.layers {
            let n = n_pos.min(l.limit).min(l.cap);
            buf.clear();
            for c in 0..n {
                for h in 0..self.shape.n_kv_head {
                    l.k[l.k_range(h, c, hd)]
                        .iter()
                        .for_each(|e| e.to_le(&mut buf));
                }
            }
            for d in 0..w {
                l.v_t[d * l.cap..d * l.cap + n]
                    .iter()
                    .for_each(|e| e.to_le(&mut buf));
            }
            out.write_all(&buf)?;
        }
        Ok(())
    }

    /// Reads what [`write_cells`](Self::write_cells) wrote for `n_pos` positions.
    fn read_cells(&mut self, n_pos: usize, input: &mut impl std::io::Read) -> Result<()> {
        self.reserve(n_pos)?;
        let (w, hd) = (self.shape.kv_width(), self.shape.head_dim);
        let mut buf = Vec::new();
        for l in &mut self.layers {
            let n = n_pos.min(l.limit);
            let len = 2 * n * w * E::BYTES;
            buf.clear();
            buf.try_reserve_exact(len)
                .map_err(|_| alloc_error("KV state", len))?;
            buf.resize(len, 0);
            input.read_exact(&mut buf).map_err(|e| Error::BadState {
                what: format!("KV cells: {e}"),
            })?;
            let mut elems = buf.chunks_exact(E::BYTES).map(E::from_le);
            for c in 0..n {
                for h in 0..self.shape.n_kv_head {
                    let at = l.k_range(h, c, hd);
                    for (dst, src) in l.k[at].iter_mut().zip(elems.by_ref()) {
                        *dst = src;
                    }
                }
            }
            for d in 0..w {
                for (dst, src) in l.v_t[d * l.cap..d * l.cap + n]
                    .iter_mut()
                    .zip(elems.by_ref())
                {
                    *dst = src;
                }
            }
        }
        Ok(())
    }
}

/// A session's cache, of either element type.
#[derive(Debug)]
pub enum KvCache {
    /// f16 elements.
    F16(TypedKvCache<f16>),
    /// f32 elements.
    F32(TypedKvCache<f32>),
}

macro_rules! each {
    ($self:expr, $c:ident => $e:expr) => {
        match $self {
            KvCache::F16($c) => $e,
            KvCache::F32($c) => $e,
        }
    };
}

impl KvCache {
    /// An empty cache: nothing is allocated until [`reserve`](Self::reserve).
    pub fn new(shape: KvShape, ty: KvCacheType) -> KvCache {
        match ty {
            KvCacheType::F16 => KvCache::F16(TypedKvCache::new(shape)),
            KvCacheType::F32 => KvCache::F32(TypedKvCache::new(shape)),
        }
    }

    /// The element type.
    pub fn ty(&self) -> KvCacheType {
        match self {
            KvCache::F16(_) => KvCacheType::F16,
            KvCache::F32(_) => KvCacheType::F32,
        }
    }

    /// The shape this cache was made with.
    pub fn shape(&self) -> &KvShape {
        each!(self, c => c.shape())
    }

    /// Makes room for positions `0..n_pos` in every layer; see [`TypedKvCache`]'s growth.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when an allocation fails (the cache is then unchanged).
    pub fn reserve(&mut self, n_pos: usize) -> Result<()> {
        each!(self, c => c.reserve(n_pos))
    }

    /// Bytes allocated for cells.
    pub fn bytes(&self) -> usize {
        each!(self, c => c.bytes())
    }

    /// Stores K and V rows for positions `first..`; see [`TypedKvCache::store`].
    pub fn store(&mut self, layer: usize, first: usize, k_rows: &[f32], v_rows: &[f32]) {
        each!(self, c => c.store(layer, first, k_rows, v_rows))
    }

    /// The cell map of `layer` when it holds positions `0..n_pos`.
    pub fn cells(&self, layer: usize, n_pos: usize) -> CellMap {
        each!(self, c => c.cells(layer, n_pos))
    }

    /// Whether truncating a cache that holds positions `0..n_pos` to `0..keep` leaves every
    /// key that a query at `keep` or later can see, given each layer's attention `windows`
    /// (None: full attention). False when a wrapped ring already overwrote some of them.
    pub fn can_truncate(&self, n_pos: usize, keep: usize, windows: &[Option<usize>]) -> bool {
        (0..self.shape().n_layer()).all(|il| {
            let map = self.cells(il, n_pos);
            if !map.wrapped {
                return true;
            }
            let oldest_held = n_pos - map.n_cells;
            match windows.get(il).copied().flatten() {
                // A query at `keep` sees positions above keep - window.
                Some(w) => keep.saturating_sub(w.saturating_sub(1)) >= oldest_held,
                None => oldest_held == 0,
            }
        })
    }

    /// A copy (a forked session's cache).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when the copy cannot be allocated.
    pub fn try_clone(&self) -> Result<KvCache> {
        Ok(match self {
            KvCache::F16(c) => KvCache::F16(c.try_clone()?),
            KvCache::F32(c) => KvCache::F32(c.try_clone()?),
        })
    }

    /// A copy holding only the cells of positions `0..n_pos` (a forked prefix), allocated for
    /// those; the caller makes sure no layer has wrapped past them.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when the copy cannot be allocated.
    pub fn try_clone_prefix(&self, n_pos: usize) -> Result<KvCache> {
        Ok(match self {
            KvCache::F16(c) => KvCache::F16(c.try_clone_prefix(n_pos)?),
            KvCache::F32(c) => KvCache::F32(c.try_clone_prefix(n_pos)?),
        })
    }

    /// Bytes [`write_cells`](Self::write_cells) writes for `n_pos` positions.
    pub fn cells_bytes(&self, n_pos: usize) -> u128 {
        let s = self.shape();
        let cells: u128 = s
            .layer_cells
            .iter()
            .map(|&limit| n_pos.min(limit) as u128)
            .sum();
        cells * 2 * s.kv_width() as u128 * self.ty().bytes() as u128
    }

    /// Writes the cells holding positions `0..n_pos` (a saved session's KV).
    pub fn write_cells(&self, n_pos: usize, out: &mut impl std::io::Write) -> std::io::Result<()> {
        each!(self, c => c.write_cells(n_pos, out))
    }

    /// Reads cells written by [`write_cells`](Self::write_cells) for `n_pos` positions.
    ///
    /// # Errors
    /// [`Error::BadState`] when the input ends early, [`Error::OutOfMemory`] when the cells
    /// cannot be allocated.
    pub fn read_cells(&mut self, n_pos: usize, input: &mut impl std::io::Read) -> Result<()> {
        each!(self, c => c.read_cells(n_pos, input))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(layer_cells: Vec<usize>, n_kv_head: usize, head_dim: usize) -> KvShape {
        KvShape {
            n_kv_head,
            head_dim,
            layer_cells,
        }
    }

    fn k_head<E: KvElem>(c: &TypedKvCache<E>, layer: usize, cell: usize, h: usize) -> Vec<f32> {
        let s = c.shape();
        let rows = c.k_rows(layer, h);
        rows[cell * s.head_dim..cell * s.head_dim + s.head_dim]
            .iter()
            .map(|e| e.to_f32())
            .collect()
    }

    fn v_run<E: KvElem>(c: &TypedKvCache<E>, layer: usize, h: usize, d: usize) -> Vec<f32> {
        let stride = c.v_stride(layer);
        let rows = c.v_rows(layer, h);
        rows[d * stride..d * stride + stride]
            .iter()
            .map(|e| e.to_f32())
            .collect()
    }

    #[test]
    fn store_places_k_by_cell_and_v_transposed() {
        let mut c = TypedKvCache::<f32>::new(shape(vec![4, 4], 2, 2));
        c.reserve(3).unwrap();
        // Two tokens at cells 1 and 2 of layer 1; row = [h0d0, h0d1, h1d0, h1d1].
        let k = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let v = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0];
        c.store(1, 1, &k, &v);
        assert_eq!(k_head(&c, 1, 2, 1), [7.0, 8.0]);
        assert_eq!(k_head(&c, 0, 2, 1), [0.0, 0.0]);
        assert_eq!(
            c.v_stride(1),
            4,
            "grown to the limit (below one growth step)"
        );
        assert_eq!(v_run(&c, 1, 1, 0), [0.0, 30.0, 70.0, 0.0]);
        assert_eq!(v_run(&c, 1, 0, 1), [0.0, 20.0, 60.0, 0.0]);
    }

    #[test]
    fn growth_keeps_cells_and_follows_use() {
        let mut c = TypedKvCache::<f32>::new(shape(vec![1000], 1, 1));
        assert_eq!(c.bytes(), 0, "nothing allocated before use");
        c.reserve(5).unwrap();
        assert_eq!(c.v_stride(0), GROW_CELLS);
        let vals: Vec<f32> = (0..40).map(|i| i as f32).collect();
        c.store(0, 0, &vals[..5], &vals[..5]);
        c.reserve(40).unwrap();
        assert_eq!(c.v_stride(0), 64);
        c.store(0, 5, &vals[5..40], &vals[5..40]);
        assert_eq!(&v_run(&c, 0, 0, 0)[..40], &vals[..]);
        assert_eq!(k_head(&c, 0, 39, 0), [39.0]);
        // Growth is by half again at least: 64 -> 96.
        c.reserve(65).unwrap();
        assert_eq!(c.v_stride(0), 96);
        assert_eq!(&v_run(&c, 0, 0, 0)[..40], &vals[..]);
    }

    #[test]
    fn ring_layer_wraps_at_its_limit() {
        let mut c = TypedKvCache::<f32>::new(shape(vec![4, 100], 1, 1));
        c.reserve(6).unwrap();
        assert_eq!(c.v_stride(0), 4);
        let vals = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        c.store(0, 0, &vals, &vals);
        c.store(1, 0, &vals, &vals);
        assert_eq!(v_run(&c, 0, 0, 0), [4.0, 5.0, 2.0, 3.0]);
        let map = c.cells(0, 6);
        assert!(map.wrapped);
        assert_eq!(
            (0..4).map(|i| map.position(i)).collect::<Vec<_>>(),
            [4, 5, 2, 3]
        );
        assert!(!c.cells(1, 6).wrapped);
    }

    #[test]
    fn ring_size_is_llama_cpps_swa_cache_size() {
        // Gemma 3: window 512, ubatch 512 -> 1024 cells.
        assert_eq!(ring_cells(512, 512), 1024);
        assert_eq!(ring_cells(4096, 512), 4608);
        assert_eq!(ring_cells(128, 1), 256);
    }

    #[test]
    fn truncation_past_the_ring_is_detected() {
        let c = KvCache::new(shape(vec![8, 100], 1, 1), KvCacheType::F32);
        let windows = [Some(4), None];
        // 20 positions held: the ring holds 12..20. Truncating to 18 needs 15.. (ok); to 14
        // needs 11.. (gone).
        assert!(c.can_truncate(20, 18, &windows));
        assert!(!c.can_truncate(20, 14, &windows));
        assert!(
            c.can_truncate(8, 2, &windows),
            "an unwrapped ring is always fine"
        );
    }

    #[test]
    fn f16_cache_rounds_to_nearest_even() {
        // 1 + 2^-11 lies halfway between the f16 values 1 and 1 + 2^-10: ties go to even (1).
        let mut c = TypedKvCache::<f16>::new(shape(vec![1], 1, 1));
        c.reserve(1).unwrap();
        c.store(0, 0, &[1.0 + 1.0 / 2048.0], &[1.0 + 3.0 / 2048.0]);
        assert_eq!(k_head(&c, 0, 0, 0), [1.0]);
        assert_eq!(v_run(&c, 0, 0, 0), [1.0 + 2.0 / 1024.0]);
    }

    #[test]
    fn cells_round_trip_through_bytes() {
        let mut c = KvCache::new(shape(vec![8, 3], 1, 2), KvCacheType::F16);
        c.reserve(5).unwrap();
        let k: Vec<f32> = (0..10).map(|i| i as f32 * 0.5).collect();
        let v: Vec<f32> = (0..10).map(|i| -(i as f32)).collect();
        c.store(0, 0, &k, &v);
        c.store(1, 0, &k, &v);
        let mut bytes = Vec::new();
        c.write_cells(5, &mut bytes).unwrap();
        assert_eq!(bytes.len() as u128, c.cells_bytes(5));
        let mut d = KvCache::new(c.shape().clone(), KvCacheType::F16);
        d.read_cells(5, &mut &bytes[..]).unwrap();
        let mut again = Vec::new();
        d.write_cells(5, &mut again).unwrap();
        assert_eq!(bytes, again);
        assert!(d.read_cells(5, &mut &bytes[..10]).is_err(), "short input");
    }
}
