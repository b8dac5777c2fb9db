// atanh(s) / s as a polynomial in s2 = s^2, for s in [0, 1/3] (error below 2e-8): the GPU twin
// of `rng::atanh_series`, for logarithms near 1 where the platform log loses precision.
fn atanh_series(s2: f32) -> f32 {
    var p = 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    return p * s2 + 1.0;
}
