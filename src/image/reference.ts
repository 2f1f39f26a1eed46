/**
 * Image references as containerd and docker name images: `[domain/]path[:tag]`, in the grammar
 * of distribution/reference (reference.go there). An exported image needs a full one so that
 * `ctr images import` and `docker load` keep the name as given: a first component with a dot,
 * like vhive's `vhive.local/`, is a domain, so docker does not put `docker.io/library/` before it.
 *
 *   helloworld                       -> vhive.local/helloworld:latest
 *   team/hello:v2                    -> vhive.local/team/hello:v2
 *   registry.example:5000/hello      -> registry.example:5000/hello:latest
 *
 * Throws ERR_VALIDATION for text that is no reference (upper case, a digest, a bad tag).
 */
import { VhiveError } from "../shared/errors.js";

/** The domain an exported image's name gets when it names none. */
export const LOCAL_DOMAIN = "vhive.local";
export const DEFAULT_TAG = "latest";

const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = new RegExp(`^${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
/** distribution/reference's NameTotalLengthMax. */
const NAME_MAX_CHARS = 255;

export interface ImageReference {
  /** `domain/path`, without the tag. */
  name: string;
  tag: string;
  /** `name:tag`. */
  full: string;
}

/** Parses `text` as a reference, adding vhive.local/ when it names no domain and :latest when no tag. */
export function parseImageReference(text: string, what = "image reference"): ImageReference {
  const bad = (why: string): VhiveError =>
    new VhiveError("ERR_VALIDATION", `${what} "${text}" is not a valid image reference: ${why}`, {
      remedy: `give a reference like ${LOCAL_DOMAIN}/hello:latest or hello:v1 (lower-case path, optional :tag, no @digest)`,
    });
  if (text.includes("@")) throw bad("digests (@sha256:...) cannot name an exported image");
  const lastSlash = text.lastIndexOf("/");
  const colon = text.indexOf(":", lastSlash + 1);
  const nameText = colon === -1 ? text : text.slice(0, colon);
  const tag = colon === -1 ? DEFAULT_TAG : text.slice(colon + 1);
  if (!TAG.test(tag)) throw bad(`tag "${tag}" must be letters, digits, '_', '.' or '-', at most 128, not starting with '.' or '-'`);
  const components = nameText.split("/");
  const first = components[0] ?? "";
  const hasDomain = components.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost");
  if (hasDomain && !DOMAIN.test(first)) throw bad(`"${first}" is not a domain name`);
  const path = hasDomain ? components.slice(1) : components;
  for (const component of path) {
    if (component === "") throw bad("it has an empty path component");
    if (!PATH_COMPONENT.test(component)) {
      throw bad(`"${component}" must be lower-case letters and digits, separated by '.', '_', '__' or dashes`);
    }
  }
  const name = hasDomain ? nameText : `${LOCAL_DOMAIN}/${nameText}`;
  if (name.length > NAME_MAX_CHARS) throw bad(`the name is longer than ${NAME_MAX_CHARS} characters`);
  return { name, tag, full: `${name}:${tag}` };
}
