import { EditorView, basicSetup } from "codemirror";
import { EditorState } from "@codemirror/state";
import { MergeView } from "@codemirror/merge";
import { StreamLanguage } from "@codemirror/language";
import { diff } from "@codemirror/legacy-modes/mode/diff";
window.DevloopCM = { EditorView, EditorState, MergeView, basicSetup, diffLanguage: StreamLanguage.define(diff) };
