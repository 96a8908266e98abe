//! The scale searches of ggml's k-quant quantizers (filled in next).
