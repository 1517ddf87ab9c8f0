#[test]
fn nested() {
    for depth in [1_000usize, 10_000, 100_000] {
        let mut pdf = b"%PDF-1.5\n1 0 obj\n".to_vec();
        pdf.extend(std::iter::repeat_n(b'[', depth));
        pdf.extend(std::iter::repeat_n(b']', depth));
        pdf.extend_from_slice(b"\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
        let r = media::process(&pdf, media::Sniffed::Pdf, &media::Limits::default());
        println!("depth {depth}: {r:?}");
    }
}
