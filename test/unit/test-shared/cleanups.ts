/** Undo steps registered as resources are made; `run` them (newest first) after each test. */
export class Cleanups {
  readonly #steps: (() => unknown)[] = [];
  push(step: () => unknown): void {
    this.#steps.push(step);
  }
  async run(): Promise<void> {
    for (const step of this.#steps.splice(0).reverse()) await step();
  }
}
