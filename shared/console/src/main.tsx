import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { configure } from "./session";
import "./style.css";

// config.json first: it says where the API and the user pool are.
void configure().finally(() =>
  createRoot(document.getElementById("root")!).render(
    <StrictMode>
      <App />
    </StrictMode>,
  ),
);
