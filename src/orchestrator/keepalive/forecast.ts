/**
 * The next idle time of a function whose idle times mostly fall beyond the histogram's range,
 * as the hybrid policy's out-of-bounds rule needs it. Shahrad et al. fit an ARIMA model to the
 * idle times (pmdarima's auto_arima in their simulator); vhive uses AutoARIMA from the `arima`
 * package (an Emscripten build of the C library ctsa), refitted on every call as the paper does.
 *
 * AutoARIMA needs at least MIN_ARIMA_SAMPLES values (ctsa refuses shorter series with its
 * default order search). With fewer, the forecast is the mean of the idle times seen: the
 * one-step forecast of an ARIMA(0,0,0) model, which is what a model with no structure to fit
 * predicts. This fallback is vhive's; the paper does not say what it did with short series.
 */
import { createRequire } from "node:module";

export const MIN_ARIMA_SAMPLES = 20;

interface ArimaModel {
  train(series: number[]): ArimaModel;
  predict(steps: number): [number[], number[]];
  destroy(): void;
}
type ArimaConstructor = new (options: { auto: boolean; verbose: boolean }) => ArimaModel;

let arima: ArimaConstructor | undefined;

/** Loaded on first use: it compiles ~0.5 MB of WebAssembly, which most daemons never need. */
function loadArima(): ArimaConstructor {
  arima ??= createRequire(import.meta.url)("arima") as ArimaConstructor;
  return arima;
}

/** The forecast next value of `series` (idle times, ms); never below 0. */
export function forecastNext(series: readonly number[]): { valueMs: number; method: "arima" | "mean" } {
  const mean = series.reduce((sum, value) => sum + value, 0) / Math.max(1, series.length);
  if (series.length < MIN_ARIMA_SAMPLES) return { valueMs: mean, method: "mean" };
  const model = new (loadArima())({ auto: true, verbose: false });
  try {
    const [[next]] = model.train([...series]).predict(1);
    // A model that cannot fit (a constant series, say) answers NaN: fall back to the mean.
    return next !== undefined && Number.isFinite(next) ? { valueMs: Math.max(0, next), method: "arima" } : { valueMs: mean, method: "mean" };
  } catch {
    return { valueMs: mean, method: "mean" };
  } finally {
    model.destroy();
  }
}
