import { debianImage, debianMinbase } from './debian-images';
import { pushImage } from './registry-push';

/**
 * The compose tests' and bench's stand-ins for Docker Hub's node and redis images: one Debian
 * layer with nodejs and redis-server (one mmdebstrap run, cached), pushed as
 * library/node:22-bookworm and as library/redis:7-bookworm, which EXPOSEs 6379 as the real
 * one does. Every user pushes exactly these, so the local store never holds another image
 * under the same names.
 */
export async function pushComposeImages(registryBase: string): Promise<void> {
  const base = debianMinbase(['nodejs', 'redis-server']);
  await pushImage(registryBase, 'library/node', '22-bookworm', debianImage(base));
  await pushImage(registryBase, 'library/redis', '7-bookworm', debianImage(base, ['6379/tcp']));
}
