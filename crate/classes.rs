//! The class names of the data sets the project knows by checksum, for a model's legend. Shared
//! by native (the trainer records them in a model's metadata) and wasm (the page labels a test
//! subset or an older model with them).

/// MNIST's classes: the digits.
pub const MNIST: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Fashion-MNIST's classes, in label order (Xiao, Rasul & Vollgraf 2017).
pub const FASHION_MNIST: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// The class names of a data set by its name (`Dataset::name`: `mnist`, `fashion-mnist`);
/// `None` for a `custom` set, whose labels have no known names.
pub fn for_dataset(name: &str) -> Option<&'static [&'static str]> {
    match name {
        "mnist" => Some(&MNIST),
        "fashion-mnist" => Some(&FASHION_MNIST),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sets_have_ten_names_and_custom_sets_none() {
        assert_eq!(for_dataset("mnist").unwrap()[7], "7");
        assert_eq!(for_dataset("fashion-mnist").unwrap()[9], "Ankle boot");
        assert_eq!(for_dataset("fashion-mnist").unwrap()[0], "T-shirt/top");
        assert!(for_dataset("custom").is_none());
    }
}
