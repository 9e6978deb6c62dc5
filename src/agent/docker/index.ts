export { createDockerEngine, type DockerEngine, socketPathOf } from './engine.ts';
export { CONTAINER_META, CONTAINER_NAME_META, type ContainerRegistration, readContainer } from './labels.ts';
export { createDockerWatcher, type DockerWatcher, type DockerWatcherOptions } from './watcher.ts';
