//! llama.cpp's file types (`llama_ftype`): the name a user asks for ("Q4_K_M"), the number written
//! to `general.file_type`, and the tensor type most weights get.

use crate::kernels::GgmlType;

/// A llama.cpp file type: what `llama-quantize IN OUT TYPE` calls TYPE.
///
/// Only the file types whose every possible tensor type we can produce byte for byte are
/// listed; the i-quant mixes below IQ4 need an importance matrix or quantizers we do not have.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    AllF32,
    MostlyF16,
    MostlyBF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2_K,
    Q3_K_S,
    Q3_K_M,
    Q3_K_L,
    Q4_K_S,
    Q4_K_M,
    Q5_K_S,
    Q5_K_M,
    Q6_K,
    IQ4_NL,
    IQ4_XS,
    /// `MXFP4_MOE`: expert tensors (3-D, more than one expert) in MXFP4, every other
    /// quantizable tensor in Q8_0.
    MXFP4_MOE,
}

/// (file type, `llama_ftype` number, llama-quantize name, the tensor type most weights get)
const TABLE: &[(FileType, u32, &str, GgmlType)] = &[
    (FileType::AllF32, 0, "F32", GgmlType::F32),
    (FileType::MostlyF16, 1, "F16", GgmlType::F16),
    (FileType::MostlyBF16, 32, "BF16", GgmlType::BF16),
    (FileType::Q4_0, 2, "Q4_0", GgmlType::Q4_0),
    (FileType::Q4_1, 3, "Q4_1", GgmlType::Q4_1),
    (FileType::Q5_0, 8, "Q5_0", GgmlType::Q5_0),
    (FileType::Q5_1, 9, "Q5_1", GgmlType::Q5_1),
    (FileType::Q8_0, 7, "Q8_0", GgmlType::Q8_0),
    (FileType::Q2_K, 10, "Q2_K", GgmlType::Q2_K),
    (FileType::Q3_K_S, 11, "Q3_K_S", GgmlType::Q3_K),
    (FileType::Q3_K_M, 12, "Q3_K_M", GgmlType::Q3_K),
    (FileType::Q3_K_L, 13, "Q3_K_L", GgmlType::Q3_K),
    (FileType::Q4_K_S, 14, "Q4_K_S", GgmlType::Q4_K),
    (FileType::Q4_K_M, 15, "Q4_K_M", GgmlType::Q4_K),
    (FileType::Q5_K_S, 16, "Q5_K_S", GgmlType::Q5_K),
    (FileType::Q5_K_M, 17, "Q5_K_M", GgmlType::Q5_K),
    (FileType::Q6_K, 18, "Q6_K", GgmlType::Q6_K),
    (FileType::IQ4_NL, 25, "IQ4_NL", GgmlType::IQ4_NL),
    (FileType::IQ4_XS, 30, "IQ4_XS", GgmlType::IQ4_XS),
    (FileType::MXFP4_MOE, 38, "MXFP4_MOE", GgmlType::MXFP4),
];

/// llama-quantize's short names for the medium k-quant mixes.
const ALIASES: &[(&str, FileType)] = &[
    ("Q3_K", FileType::Q3_K_M),
    ("Q4_K", FileType::Q4_K_M),
    ("Q5_K", FileType::Q5_K_M),
];

impl FileType {
    fn entry(self) -> &'static (FileType, u32, &'static str, GgmlType) {
        // Every variant has exactly one row; the tests keep it so.
        TABLE.iter().find(|e| e.0 == self).unwrap_or(&TABLE[0])
    }

    /// Parses a llama-quantize type name (case-insensitive, "Q4_K" meaning "Q4_K_M" as there)
    /// or a `llama_ftype` number.
    pub fn parse(text: &str) -> Option<FileType> {
        if let Some(e) = TABLE.iter().find(|e| e.2.eq_ignore_ascii_case(text)) {
            return Some(e.0);
        }
        if let Some(a) = ALIASES.iter().find(|a| a.0.eq_ignore_ascii_case(text)) {
            return Some(a.1);
        }
        let id: u32 = text.parse().ok()?;
        TABLE.iter().find(|e| e.1 == id).map(|e| e.0)
    }

    /// The file type whose weights are all of `ty` where shapes allow (what `--pure` gives).
    /// For the k-quants this is the medium mix, as llama-quantize's "Q4_K" alias is.
    pub fn for_tensor_type(ty: GgmlType) -> Option<FileType> {
        FileType::parse(ty.name())
    }

    /// The number llama.cpp writes to `general.file_type`.
    pub fn id(self) -> u32 {
        self.entry().1
    }

    /// llama-quantize's name for it.
    pub fn name(self) -> &'static str {
        self.entry().2
    }

    /// The tensor type most quantizable weights get.
    pub fn default_type(self) -> GgmlType {
        self.entry().3
    }

    /// Every supported file type.
    pub fn all() -> impl Iterator<Item = FileType> {
        TABLE.iter().map(|e| e.0)
    }
}

impl std::fmt::Display for FileType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for ft in FileType::all() {
            assert_eq!(FileType::parse(ft.name()), Some(ft));
            assert_eq!(FileType::parse(&ft.id().to_string()), Some(ft));
        }
    }

    #[test]
    fn aliases_and_fixture_numbers() {
        // requant-sha256.json: general.file_type of llama-quantize's outputs for these names.
        for (name, id) in [
            ("Q4_0", 2),
            ("q4_1", 3),
            ("Q5_0", 8),
            ("Q5_1", 9),
            ("Q8_0", 7),
            ("Q4_K", 15),
            ("Q5_K", 17),
            ("Q6_K", 18),
        ] {
            assert_eq!(FileType::parse(name).map(FileType::id), Some(id), "{name}");
        }
        assert_eq!(FileType::parse("Q4_2"), None);
        assert_eq!(FileType::parse("4"), None);
        assert_eq!(
            FileType::for_tensor_type(GgmlType::Q4_K),
            Some(FileType::Q4_K_M)
        );
        assert_eq!(FileType::for_tensor_type(GgmlType::IQ2_XXS), None);
        // llama.h: LLAMA_FTYPE_MOSTLY_MXFP4_MOE = 38; there is no plain "MXFP4" file type.
        assert_eq!(FileType::parse("mxfp4_moe"), Some(FileType::MXFP4_MOE));
        assert_eq!(FileType::MXFP4_MOE.id(), 38);
        assert_eq!(FileType::for_tensor_type(GgmlType::MXFP4), None);
    }
}
