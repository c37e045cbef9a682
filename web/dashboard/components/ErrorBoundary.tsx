import { Component, type ReactNode } from "react";
import { ErrorAlert } from "./ErrorAlert.tsx";

/** A panel that fails to draw shows its error instead of blanking the whole page. */
export class ErrorBoundary extends Component<{ children: ReactNode }, { error?: Error }> {
  override state: { error?: Error } = {};

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  override render() {
    return this.state.error ? <ErrorAlert messages={[`this panel failed: ${this.state.error.message}`]} /> : this.props.children;
  }
}
